-- name: top-talkers
-- description: Source and destination endpoint pairs ranked by bytes, with connections and ports.
-- One row per source endpoint and destination endpoint, over all protocols and ports.
-- Endpoints: namespace/aggregated-name for pods (wep) and network sets (ns), 'pvt'/'pub' for
-- networks (net), the hostname for host endpoints (hep).
-- Reporter rule: a connection between two cluster endpoints is reported by both ends, so each
-- connection is counted once, at the last point it reached: the destination's report (reporter
-- dst) when the destination is a pod or host endpoint, the source's report (reporter src) when the
-- destination is outside the cluster (net, ns) or the source's egress policy denied it (then the
-- destination never saw it). Host endpoints report only with flowLogsEnableHostEndpoint; fwd
-- (transit) records are not counted.
-- connections = sum(num_flows_started), the connections that began in the window; bytes =
-- bytes_in + bytes_out and packets = packets_in + packets_out of the counted report;
-- denied_connections are the connections among them whose final verdict was deny; ports = how
-- many distinct protocol/port pairs the pair used.
-- Columns: source, source_type, dest, dest_type, records, connections, denied_connections, bytes,
-- packets, ports, first_seen, last_seen. Ranked by bytes, then connections, then the key columns.
-- Plain SQL; sqlglot transpiles it to Spark.
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
WITH g AS (
    SELECT
        source_type,
        source_namespace,
        source_name_aggr,
        dest_type,
        dest_namespace,
        dest_name_aggr,
        proto,
        dest_port,
        action,
        COUNT(*) AS records,
        SUM(num_flows_started) AS connections,
        SUM(bytes_in + bytes_out) AS bytes,
        SUM(packets_in + packets_out) AS packets,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE (
            (reporter = 'dst' AND dest_type IN ('wep', 'hep'))
            OR (reporter = 'src' AND (dest_type NOT IN ('wep', 'hep') OR action = 'deny'))
        )
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY
        source_type, source_namespace, source_name_aggr, dest_type, dest_namespace, dest_name_aggr, proto, dest_port,
        action
),
n AS (
    SELECT
        endpoint_name(source_type, source_namespace, source_name_aggr) AS source,
        source_type,
        endpoint_name(dest_type, dest_namespace, dest_name_aggr) AS dest,
        dest_type,
        proto || '/' || COALESCE(CAST(dest_port AS VARCHAR), '-') AS port,
        action,
        records,
        connections,
        bytes,
        packets,
        first_seen,
        last_seen
    FROM g
)
SELECT
    source,
    source_type,
    dest,
    dest_type,
    CAST(SUM(records) AS BIGINT) AS records,
    CAST(SUM(connections) AS BIGINT) AS connections,
    CAST(SUM(CASE WHEN action = 'deny' THEN connections ELSE 0 END) AS BIGINT) AS denied_connections,
    CAST(SUM(bytes) AS BIGINT) AS bytes,
    CAST(SUM(packets) AS BIGINT) AS packets,
    COUNT(DISTINCT port) AS ports,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM n
GROUP BY source, source_type, dest, dest_type
ORDER BY bytes DESC, connections DESC, records DESC, source, source_type, dest, dest_type
