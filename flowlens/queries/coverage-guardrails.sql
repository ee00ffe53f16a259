-- name: coverage-guardrails
-- description: The decisions of the cluster guardrails: connections each Admin or Baseline policy allowed or denied, per direction.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). A guardrail is a policy of one of
-- Calico's cluster tiers: kube-admin and kube-baseline (ClusterNetworkPolicy, Calico 3.32+),
-- adminnetworkpolicy and baselineadminnetworkpolicy (AdminNetworkPolicy and
-- BaselineAdminNetworkPolicy, 3.29-3.31), or a Calico policy placed in one of them. Only the deciding
-- hit counts: a guardrail that passed the flow on to the namespaces' tiers decided nothing.
-- layer: 'admin' (evaluated before every other tier: namespace policies cannot override it) or
-- 'baseline' (evaluated after the default tier: it decides only what no namespace policy decided).
-- direction: 'ingress' (the destination's record) or 'egress' (the source's record), so a
-- connection decided at both ends counts once per side, as the coverage figures count it.
-- workloads: the distinct workloads (namespace/name_aggr) the rows decided for. Pods only, as the
-- cluster figures of the report count them (a ClusterNetworkPolicy's subjects are pods; host
-- endpoints have their own section).
WITH decided AS (
    SELECT
        CASE WHEN policy_tier IN ('kube-admin', 'adminnetworkpolicy') THEN 'admin' ELSE 'baseline' END AS layer,
        policy_tier AS tier,
        decided_by,
        CASE reporter WHEN 'dst' THEN 'ingress' ELSE 'egress' END AS direction,
        action,
        CASE reporter WHEN 'dst' THEN dest_type ELSE source_type END AS workload_type,
        CASE reporter
            WHEN 'dst' THEN dest_namespace || '/' || dest_name_aggr
            ELSE source_namespace || '/' || source_name_aggr
        END AS workload,
        records,
        connections,
        bytes
    FROM coverage_facts
    WHERE policy_tier IN ('kube-admin', 'adminnetworkpolicy', 'kube-baseline', 'baselineadminnetworkpolicy')
        AND action IN ('allow', 'deny')
)
SELECT
    layer, tier, decided_by, direction, action,
    sum(records) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes,
    count(DISTINCT workload) AS workloads
FROM decided
WHERE workload_type = 'wep'
GROUP BY ALL
ORDER BY layer, tier, decided_by, direction, action
