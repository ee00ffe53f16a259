-- name: coverage-unexpected
-- description: Allowed traffic that segmentation did not intend, by category (a record can fall in several).
-- Reads coverage_facts (registered by flowlens.coverage). Categories:
--   allowed-by-profile: allowed by the default profile (kns.<namespace>), no policy rule decided;
--   cross-namespace-by-profile: the same, between two different namespaces;
--   from-internet: ingress from public networks that was allowed (reporter 'dst');
--   to-internet: egress to public networks that was allowed (reporter 'src');
--   denied-by-staged-policy: allowed now, but a staged policy would deny it (pending trace);
--   policies-not-logged: allowed, but the record carries no policy trace (cannot be judged).
-- workloads counts distinct reporting workloads (namespace/name_aggr of the reporter).
WITH tagged AS (
    SELECT 'allowed-by-profile' AS category, * FROM coverage_facts WHERE decision = 'profile'
    UNION ALL
    SELECT 'cross-namespace-by-profile', * FROM coverage_facts
    WHERE decision = 'profile' AND source_namespace <> '-' AND dest_namespace <> '-'
      AND source_namespace <> dest_namespace
    UNION ALL
    SELECT 'from-internet', * FROM coverage_facts
    WHERE action = 'allow' AND reporter = 'dst' AND source_type = 'net' AND source_name_aggr = 'pub'
    UNION ALL
    SELECT 'to-internet', * FROM coverage_facts
    WHERE action = 'allow' AND reporter = 'src' AND dest_type = 'net' AND dest_name_aggr = 'pub'
    UNION ALL
    SELECT 'denied-by-staged-policy', * FROM coverage_facts WHERE action = 'allow' AND staged_deny
    UNION ALL
    SELECT 'policies-not-logged', * FROM coverage_facts WHERE decision = 'unknown'
)
SELECT
    category,
    sum(records) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes,
    count(DISTINCT CASE reporter WHEN 'dst' THEN dest_namespace || '/' || dest_name_aggr
        ELSE source_namespace || '/' || source_name_aggr END) AS workloads
FROM tagged
GROUP BY category
ORDER BY category
