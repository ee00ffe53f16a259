-- name: external-destinations
-- description: Destinations outside the cluster's pods and hosts (internet, private networks, network sets) and who talks to them.
-- One row per destination (type net: 'pub' internet or 'pvt' private network; type ns: a
-- network set as namespace/name, or its name for a global one), destination IP when logged (null
-- at aggregation level 2 and above), DNS names, protocol, port and verdict.
-- Reporter rule: only the source reports traffic to a destination outside the cluster (such a
-- destination runs no Felix), so the source's records (reporter src) are counted, once each.
-- connections = sum(num_flows_started), the connections that began in the window; bytes =
-- bytes_in + bytes_out; sources = how many distinct source endpoints (namespace/aggregated-name,
-- or hostname) sent it; domains = the DNS names Calico associated with the IP, sorted, comma-joined.
-- Columns: dest, dest_type, dest_ip, domains, proto, dest_port, action, sources, records,
-- connections, bytes, first_seen, last_seen. Ranked by connections, then bytes, then the key columns.
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
        dest_ip,
        dest_domains,
        proto,
        dest_port,
        action,
        COUNT(*) AS records,
        SUM(num_flows_started) AS connections,
        SUM(bytes_in + bytes_out) AS bytes,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE reporter = 'src'
        AND dest_type IN ('net', 'ns')
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY
        source_type, source_namespace, source_name_aggr, dest_type, dest_namespace, dest_name_aggr, dest_ip,
        dest_domains, proto, dest_port, action
),
n AS (
    SELECT
        endpoint_name(source_type, source_namespace, source_name_aggr) AS source,
        endpoint_name(dest_type, dest_namespace, dest_name_aggr) AS dest,
        dest_type,
        dest_ip,
        array_to_string(list_sort(dest_domains), ',') AS domains,
        proto,
        dest_port,
        action,
        records,
        connections,
        bytes,
        first_seen,
        last_seen
    FROM g
)
SELECT
    dest,
    dest_type,
    dest_ip,
    domains,
    proto,
    dest_port,
    action,
    COUNT(DISTINCT source) AS sources,
    CAST(SUM(records) AS BIGINT) AS records,
    CAST(SUM(connections) AS BIGINT) AS connections,
    CAST(SUM(bytes) AS BIGINT) AS bytes,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM n
GROUP BY dest, dest_type, dest_ip, domains, proto, dest_port, action
ORDER BY connections DESC, bytes DESC, records DESC, dest, dest_type, dest_ip, domains, proto, dest_port, action
