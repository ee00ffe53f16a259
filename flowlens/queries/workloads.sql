-- name: workloads
-- description: Every endpoint seen, as source or destination, with its labels and when it was seen.
-- One row per endpoint: type (wep pod, hep host endpoint, ns network set, net network), namespace
-- ('-' when not namespaced) and aggregated name ('pvt'/'pub' for net, the hostname for hep);
-- endpoint is the display name used by the other queries (namespace/name for wep and ns).
-- labels are the endpoint's labels from its most recent record that logged labels (Calico logs
-- the intersection of the labels of the pods a record aggregates).
-- Reporter rule: every record counts, from either reporter: records_as_source and
-- records_as_dest count log records, not connections, so a connection both ends reported adds a
-- record to each side.
-- Columns: endpoint, type, namespace, name, labels, records_as_source, records_as_dest,
-- first_seen, last_seen. Sorted by type, namespace, name.
-- arg_max is DuckDB's name for Spark's max_by; sqlglot transpiles it (and the struct to STRUCT).
-- Records that end at the same time with other labels are told apart by the labels' text, so
-- the answer does not depend on the order of the rows (which compaction changes).
-- param: namespace VARCHAR = NULL  -- only endpoints in this namespace
WITH e AS (
    SELECT
        source_type AS type,
        source_namespace AS namespace,
        source_name_aggr AS name,
        arg_max(source_labels, CASE WHEN source_labels IS NOT NULL THEN {'t': end_time, 'k': CAST(source_labels AS VARCHAR)} END) AS labels,
        COUNT(*) AS records_as_source,
        0 AS records_as_dest,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE $namespace IS NULL OR source_namespace = $namespace
    GROUP BY source_type, source_namespace, source_name_aggr
    UNION ALL
    SELECT
        dest_type AS type,
        dest_namespace AS namespace,
        dest_name_aggr AS name,
        arg_max(dest_labels, CASE WHEN dest_labels IS NOT NULL THEN {'t': end_time, 'k': CAST(dest_labels AS VARCHAR)} END) AS labels,
        0 AS records_as_source,
        COUNT(*) AS records_as_dest,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE $namespace IS NULL OR dest_namespace = $namespace
    GROUP BY dest_type, dest_namespace, dest_name_aggr
)
SELECT
    endpoint_name(type, namespace, name) AS endpoint,
    type,
    namespace,
    name,
    arg_max(labels, CASE WHEN labels IS NOT NULL THEN {'t': last_seen, 'k': CAST(labels AS VARCHAR)} END) AS labels,
    CAST(SUM(records_as_source) AS BIGINT) AS records_as_source,
    CAST(SUM(records_as_dest) AS BIGINT) AS records_as_dest,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM e
GROUP BY type, namespace, name
ORDER BY type, namespace, name
