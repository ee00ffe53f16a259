-- name: coverage-denied-flows
-- description: Denied flows in the window, largest first, with the policy hit that denied them.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). Records of both reporters are kept and
-- the reporter is a column: a flow denied at the source (egress) never reaches the destination,
-- and one denied at the destination (ingress) was allowed out by the source, so they never
-- count the same connection twice. decided_by names the denying hit ('knp:db/allow-api'; NULL
-- when the policies were not logged), end_of_tier marks a tier's default deny (rule_index -1).
-- param: top BIGINT = 20  -- how many flows to return
SELECT
    source_type, source_namespace, source_name_aggr,
    dest_type, dest_namespace, dest_name_aggr,
    proto, dest_port, reporter,
    policy_tier, decided_by, end_of_tier,
    sum(records) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes
FROM coverage_facts
WHERE action = 'deny'
GROUP BY ALL
ORDER BY connections DESC, records DESC, source_namespace, source_name_aggr, dest_namespace,
    dest_name_aggr, proto, dest_port NULLS FIRST, reporter, decided_by NULLS FIRST
LIMIT $top
