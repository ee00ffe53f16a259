-- name: namespace-matrix
-- description: Connections between namespaces (and the internet, private networks, hosts), allowed and denied.
-- One row per source group and destination group. A group is the endpoint's namespace; endpoints
-- without one are grouped as 'pub' (internet) and 'pvt' (private networks) for type net, 'host'
-- for host endpoints (hep) and 'global' for global network sets (ns without a namespace).
-- Reporter rule: a connection between two cluster endpoints is reported by both ends, so each
-- connection is counted once, at the last point it reached: the destination's report (reporter
-- dst) when the destination is a pod or host endpoint, the source's report (reporter src) when the
-- destination is outside the cluster (net, ns) or the source's egress policy denied it. fwd
-- (transit) records are not counted.
-- connections = sum(num_flows_started), the connections that began in the window, split into
-- allowed_connections and denied_connections by the final verdict of the counted report;
-- bytes = bytes_in + bytes_out.
-- Columns: source_namespace, dest_namespace, records, connections, allowed_connections,
-- denied_connections, bytes, first_seen, last_seen. Sorted by source_namespace, dest_namespace.
-- Plain SQL; sqlglot transpiles it to Spark.
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
WITH g AS (
    SELECT
        source_type,
        source_namespace,
        CASE WHEN source_type = 'net' THEN source_name_aggr END AS source_net,
        dest_type,
        dest_namespace,
        CASE WHEN dest_type = 'net' THEN dest_name_aggr END AS dest_net,
        action,
        COUNT(*) AS records,
        SUM(num_flows_started) AS connections,
        SUM(bytes_in + bytes_out) AS bytes,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE (
            (reporter = 'dst' AND dest_type IN ('wep', 'hep'))
            OR (reporter = 'src' AND (dest_type NOT IN ('wep', 'hep') OR action = 'deny'))
        )
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY
        source_type, source_namespace, CASE WHEN source_type = 'net' THEN source_name_aggr END,
        dest_type, dest_namespace, CASE WHEN dest_type = 'net' THEN dest_name_aggr END, action
),
n AS (
    SELECT
        CASE
            WHEN source_namespace <> '-' THEN source_namespace
            WHEN source_type = 'net' THEN source_net
            WHEN source_type = 'hep' THEN 'host'
            ELSE 'global'
        END AS source_namespace,
        CASE
            WHEN dest_namespace <> '-' THEN dest_namespace
            WHEN dest_type = 'net' THEN dest_net
            WHEN dest_type = 'hep' THEN 'host'
            ELSE 'global'
        END AS dest_namespace,
        action,
        records,
        connections,
        bytes,
        first_seen,
        last_seen
    FROM g
)
SELECT
    source_namespace,
    dest_namespace,
    CAST(SUM(records) AS BIGINT) AS records,
    CAST(SUM(connections) AS BIGINT) AS connections,
    CAST(SUM(CASE WHEN action = 'allow' THEN connections ELSE 0 END) AS BIGINT) AS allowed_connections,
    CAST(SUM(CASE WHEN action = 'deny' THEN connections ELSE 0 END) AS BIGINT) AS denied_connections,
    CAST(SUM(bytes) AS BIGINT) AS bytes,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM n
GROUP BY source_namespace, dest_namespace
ORDER BY source_namespace, dest_namespace
