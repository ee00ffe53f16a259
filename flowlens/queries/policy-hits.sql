-- name: policy-hits
-- description: Per policy and rule: the records and connections it decided or passed, and when it last matched.
-- One row per policy hit (tier, policy as kind:namespace/name, rule index, action) and side:
-- 'egress' for hits reported by the source (reporter src: egress rules), 'ingress' for reporter dst
-- (ingress rules); rule_index -1 is the tier's end (no rule of the tier matched; the tier's
-- default action was blamed on this policy). Every hit of a trace counts, including pass hits
-- that handed the flow to the next tier.
-- Reporter rule: a policy's egress rules are evaluated only at the source and its ingress rules
-- only at the destination, so each record counts for the hits of its own trace and no connection
-- is counted twice for one row. fwd (transit) records are not read.
-- trace: 'enforced' (default) reads enforced_policies; 'pending' reads pending_policies, where
-- staged policies act as enforced (use it to see what a staged policy would match).
-- connections = sum(num_flows_started), the connections that began in the window.
-- Columns: tier, policy, rule_index, action, side, staged, records, connections, first_seen,
-- last_seen. Ranked by connections, then records, then the key columns.
-- Portable except CROSS JOIN UNNEST, which sqlglot turns into Spark's LATERAL VIEW EXPLODE.
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
-- param: trace VARCHAR = 'enforced'  -- enforced or pending
WITH g AS (
    SELECT
        reporter,
        CASE WHEN $trace = 'pending' THEN pending_policies ELSE enforced_policies END AS hits,
        COUNT(*) AS records,
        SUM(num_flows_started) AS connections,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM flows
    WHERE reporter IN ('src', 'dst')
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY reporter, CASE WHEN $trace = 'pending' THEN pending_policies ELSE enforced_policies END
),
u AS (
    SELECT
        h.tier AS tier,
        split_part(h.hit, '|', 3) AS policy,
        h.rule_index AS rule_index,
        h.action AS action,
        CASE reporter WHEN 'src' THEN 'egress' ELSE 'ingress' END AS side,
        COALESCE(h.staged, FALSE) AS staged,
        records,
        connections,
        first_seen,
        last_seen
    FROM g
    CROSS JOIN UNNEST(hits) AS t (h)
)
SELECT
    tier,
    policy,
    rule_index,
    action,
    side,
    staged,
    CAST(SUM(records) AS BIGINT) AS records,
    CAST(SUM(connections) AS BIGINT) AS connections,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM u
GROUP BY tier, policy, rule_index, action, side, staged
ORDER BY connections DESC, records DESC, tier, policy, rule_index, action, side, staged
