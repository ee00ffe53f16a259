-- name: policy-endpoints
-- description: Endpoints seen in the flows that match a namespace and workload (pod name, aggregated name, name prefix or app label) or an IP, for policy explain.
-- used-by: explain
-- Looks at both sides of every record (source and destination) and returns each distinct
-- endpoint (type, namespace, names, IP, labels) with the number of records it appears in,
-- most seen first. A workload matches the pod name, the aggregated name ('frontend-7d4f8c9b5-*'),
-- a prefix of the aggregated name, or the value of the 'app' or 'app.kubernetes.io/name' label.
-- Map subscripts (labels['app']) are DuckDB syntax (Spark: element_at).
-- param: namespace VARCHAR = NULL  -- the endpoint's namespace
-- param: workload VARCHAR = NULL   -- pod name, aggregated name, name prefix or app label value
-- param: ip VARCHAR = NULL         -- the endpoint's IP address
WITH sides AS (
    SELECT source_type AS type, source_namespace AS namespace, source_name AS name,
        source_name_aggr AS name_aggr, source_ip AS ip, source_labels AS labels
    FROM flows
    UNION ALL
    SELECT dest_type, dest_namespace, dest_name, dest_name_aggr, dest_ip, dest_labels
    FROM flows
)
SELECT type, namespace, name, name_aggr, ip, labels, count(*) AS records
FROM sides
WHERE ($namespace IS NULL OR namespace = $namespace)
    AND ($ip IS NULL OR ip = $ip)
    AND (
        $workload IS NULL
        OR name = $workload
        OR name_aggr = $workload
        OR starts_with(name_aggr, rtrim($workload, '*'))
        OR labels['app'] = $workload
        OR labels['app.kubernetes.io/name'] = $workload
    )
GROUP BY ALL
ORDER BY records DESC, type, namespace, name_aggr, name, ip
