-- name: coverage-edges
-- description: Connections between namespaces (and the internet, private networks, hosts), each counted once.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). Each connection is counted once: from
-- the destination's record (reporter 'dst') when the destination is a pod or host endpoint,
-- since the destination's ingress policy decides last; otherwise from the source's record
-- (reporter 'src': traffic to networks and network sets, and traffic denied at the source,
-- which never reaches the destination). Nodes are namespaces; endpoints without a namespace
-- become '(internet)' (type net, pub), '(private networks)' (net, pvt), '(hosts)' (hep) and
-- '(global network sets)' (ns without a namespace).
WITH connections AS (
    SELECT
        CASE
            WHEN source_namespace <> '-' THEN source_namespace
            WHEN source_type = 'net' AND source_name_aggr = 'pvt' THEN '(private networks)'
            WHEN source_type = 'net' THEN '(internet)'
            WHEN source_type = 'hep' THEN '(hosts)'
            ELSE '(global network sets)'
        END AS source_node,
        CASE
            WHEN dest_namespace <> '-' THEN dest_namespace
            WHEN dest_type = 'net' AND dest_name_aggr = 'pvt' THEN '(private networks)'
            WHEN dest_type = 'net' THEN '(internet)'
            WHEN dest_type = 'hep' THEN '(hosts)'
            ELSE '(global network sets)'
        END AS dest_node,
        source_namespace <> '-' AND dest_namespace <> '-' AND source_namespace <> dest_namespace
            AS cross_namespace,
        action, decision, connections, bytes
    FROM coverage_facts
    WHERE (reporter = 'dst' AND dest_type IN ('wep', 'hep'))
       OR (reporter = 'src' AND (action = 'deny' OR dest_type NOT IN ('wep', 'hep')))
)
SELECT
    source_node,
    dest_node,
    bool_or(cross_namespace) AS cross_namespace,
    coalesce(sum(connections) FILTER (WHERE action = 'allow'), 0) AS allowed_connections,
    coalesce(sum(connections) FILTER (WHERE decision = 'explicit'), 0) AS explicit_connections,
    coalesce(sum(connections) FILTER (WHERE decision = 'profile'), 0) AS profile_connections,
    coalesce(sum(connections) FILTER (WHERE action = 'deny'), 0) AS denied_connections,
    sum(bytes) AS bytes
FROM connections
GROUP BY source_node, dest_node
ORDER BY source_node, dest_node
