-- name: coverage-denying-policies
-- description: The policies that deny most: denied connections per denying policy hit.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). end_of_tier is true when no rule of the
-- tier matched and the tier's default deny applied (rule_index -1; Calico names the last policy
-- of the tier that selected the endpoint). decided_by is the hit's name part ('knp:db/allow-api');
-- NULL means the policies were not logged.
-- param: top BIGINT = 20  -- how many policies to return
SELECT
    policy_tier AS tier, decided_by, end_of_tier,
    sum(records) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes,
    count(DISTINCT CASE reporter WHEN 'dst' THEN dest_namespace || '/' || dest_name_aggr
        ELSE source_namespace || '/' || source_name_aggr END) AS workloads
FROM coverage_facts
WHERE action = 'deny'
GROUP BY ALL
ORDER BY connections DESC, records DESC, tier NULLS FIRST, decided_by NULLS FIRST, end_of_tier
LIMIT $top
