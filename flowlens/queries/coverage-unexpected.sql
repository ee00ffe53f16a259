-- name: coverage-unexpected
-- description: Unexpectedly allowed traffic by category, from coverage_facts, with the unexpected-allowed query's definitions.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage), so a report scans the flows once. The
-- categories, reporter rules, endpoint names and allowed_by are those of the unexpected-allowed
-- query (a test checks that both give the same records, connections and bytes per category):
--   default-allow    the profile decided (per side: side says which reporter);
--   public-ingress   internet (net 'pub') into a pod, from the destination's record;
--   public-egress    a pod or host to the internet, from the source's record;
--   cross-namespace  pod to pod across namespaces, from the destination's record;
--   staged-deny      allowed now, but the pending trace denies it (per side);
--   host-endpoint    into a host endpoint, from the destination's record.
-- One row per category, source, destination, proto, port, side and allowed_by, largest first.
WITH a AS (
    SELECT
        endpoint_name(source_type, source_namespace, source_name_aggr) AS source,
        endpoint_name(dest_type, dest_namespace, dest_name_aggr) AS dest,
        CASE reporter WHEN 'src' THEN 'egress at source' ELSE 'ingress at destination' END AS side,
        coalesce(nullif(decided_by, ''), 'unknown (no enforced trace)') AS allowed_by,
        *
    FROM coverage_facts
    WHERE action = 'allow'
),
c AS (
    SELECT 'default-allow' AS category, * FROM a WHERE decision = 'profile'
    UNION ALL
    SELECT 'public-ingress', * FROM a
    WHERE source_type = 'net' AND source_name_aggr = 'pub' AND dest_type = 'wep' AND reporter = 'dst'
    UNION ALL
    SELECT 'public-egress', * FROM a
    WHERE dest_type = 'net' AND dest_name_aggr = 'pub' AND source_type IN ('wep', 'hep') AND reporter = 'src'
    UNION ALL
    SELECT 'cross-namespace', * FROM a
    WHERE source_type = 'wep' AND dest_type = 'wep' AND source_namespace <> dest_namespace AND reporter = 'dst'
    UNION ALL
    SELECT 'staged-deny', * FROM a WHERE staged_deny
    UNION ALL
    SELECT 'host-endpoint', * FROM a WHERE dest_type = 'hep' AND reporter = 'dst'
)
SELECT
    category, source, dest, proto, dest_port, side, allowed_by,
    max(pending_by) AS pending_by,
    sum(records) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes
FROM c
GROUP BY category, source, dest, proto, dest_port, side, allowed_by
ORDER BY connections DESC, bytes DESC, records DESC, category, source, dest, proto, dest_port NULLS FIRST, side,
    allowed_by
