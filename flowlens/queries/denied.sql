-- name: denied
-- description: Denied flows by source, destination, protocol and port, with the policy and rule that denied them.
-- One row per source endpoint, destination endpoint, protocol, destination port, side and
-- deciding policy hit. The deciding hit is the last hit of the enforced trace (the hit with the
-- highest policy_index): for a rule that denies it names the policy and rule; for an end-of-tier
-- deny (rule_index -1, no rule of the tier matched) it names the tier and the policy Calico
-- blames (the last policy of that tier that selected the endpoint); a 'pro:__NO_MATCH__' hit
-- means no profile matched.
-- side: 'egress at source' for records reported by the source (reporter src: the source's
-- egress policy denied it), 'ingress at destination' for reporter dst.
-- Endpoints: namespace/aggregated-name for pods (wep) and network sets (ns), the aggregated name
-- ('pvt' private network, 'pub' internet) for net, the hostname for host endpoints (hep).
-- Reporter rule: a denied connection is reported only by the side that denied it (a connection
-- denied at the source's egress never reaches the destination), so every record is counted and
-- no connection is counted twice. connections = sum(num_flows_started), the connections that
-- began in the window; bytes = bytes_in + bytes_out (a missing counter counts 0, as in
-- unexpected-allowed: a record that lacks one counter still counts the other).
-- guardrail: 'admin' or 'baseline' when a cluster guardrail decided (the deciding hit is in one of
-- Calico's guardrail tiers: kube-admin / adminnetworkpolicy, kube-baseline /
-- baselineadminnetworkpolicy, where ClusterNetworkPolicy, AdminNetworkPolicy and
-- BaselineAdminNetworkPolicy live), NULL otherwise; denied_by then says so.
-- Columns: source, source_type, dest, dest_type, proto, dest_port, side, tier, policy,
-- rule_index, end_of_tier, guardrail, denied_by, records, connections, bytes, first_seen, last_seen.
-- Ranked by connections, then bytes, then the key columns.
-- Reads flow_summary: the window's records grouped by hour, endpoints, port, reporter, verdict and
-- deciding hits (see flowlens.store.summaries), which the engine reads from the hourly summaries
-- stored beside the flows where it can (flat columns, the denied rows in row groups of their own);
-- the answer is the same as grouping the flows view. The deciding hit is the last element of the
-- trace: the store keeps every trace sorted by policy_index (ingest sorts Calico's unordered sets),
-- and the summary keeps it as enforced_last_hit, a modern hit string (tier, kind:namespace/name,
-- action and rule are read back from it). The groups are first summed on the summary's keys, and
-- the display columns are computed on the groups. Plain SQL; sqlglot transpiles it to Spark.
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
WITH g AS (
    SELECT
        source_type,
        source_namespace,
        source_name_aggr,
        dest_type,
        dest_namespace,
        dest_name_aggr,
        proto,
        dest_port,
        reporter,
        enforced_last_hit AS hit,
        SUM(records) AS records,
        SUM(connections) AS connections,
        SUM(bytes) AS bytes,
        MIN(first_seen) AS first_seen,
        MAX(last_seen) AS last_seen
    FROM flow_summary
    WHERE action = 'deny'
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY
        source_type, source_namespace, source_name_aggr, dest_type, dest_namespace, dest_name_aggr, proto, dest_port,
        reporter, enforced_last_hit
),
n AS (
    SELECT
        endpoint_name(source_type, source_namespace, source_name_aggr) AS source,
        source_type,
        endpoint_name(dest_type, dest_namespace, dest_name_aggr) AS dest,
        dest_type,
        proto,
        dest_port,
        CASE reporter
            WHEN 'src' THEN 'egress at source'
            WHEN 'dst' THEN 'ingress at destination'
            ELSE reporter
        END AS side,
        NULLIF(split_part(hit, '|', 2), '') AS tier,
        NULLIF(split_part(hit, '|', 3), '') AS policy,
        TRY_CAST(split_part(hit, '|', 5) AS INTEGER) AS rule_index,
        records,
        connections,
        bytes,
        first_seen,
        last_seen
    FROM g
),
r AS (
    SELECT
        source,
        source_type,
        dest,
        dest_type,
        proto,
        dest_port,
        side,
        tier,
        policy,
        rule_index,
        COALESCE(rule_index = -1, FALSE) AS end_of_tier,
        CASE
            WHEN tier IN ('kube-admin', 'adminnetworkpolicy') THEN 'admin'
            WHEN tier IN ('kube-baseline', 'baselineadminnetworkpolicy') THEN 'baseline'
        END AS guardrail,
        CAST(SUM(records) AS BIGINT) AS records,
        CAST(SUM(connections) AS BIGINT) AS connections,
        CAST(SUM(bytes) AS BIGINT) AS bytes,
        MIN(first_seen) AS first_seen,
        MAX(last_seen) AS last_seen
    FROM n
    GROUP BY source, source_type, dest, dest_type, proto, dest_port, side, tier, policy, rule_index
)
SELECT
    source,
    source_type,
    dest,
    dest_type,
    proto,
    dest_port,
    side,
    tier,
    policy,
    rule_index,
    end_of_tier,
    guardrail,
    CASE
        WHEN policy IS NULL THEN 'unknown: the record has no enforced policy trace'
        WHEN policy = 'pro:__NO_MATCH__' THEN 'no profile matched the endpoint'
        WHEN end_of_tier THEN 'end of tier ' || tier || ': no rule matched (blamed on ' || policy || ')'
        WHEN rule_index IS NULL OR rule_index < 0 THEN policy || ' (rule unknown)'
        ELSE policy || ' rule ' || CAST(rule_index AS VARCHAR)
    END
    || CASE guardrail
        WHEN 'admin' THEN ' (cluster guardrail, Admin tier: namespace policies cannot override it)'
        WHEN 'baseline' THEN ' (cluster guardrail, Baseline tier: no namespace policy decided it)'
        ELSE ''
    END AS denied_by,
    records,
    connections,
    bytes,
    first_seen,
    last_seen
FROM r
ORDER BY
    connections DESC, bytes DESC, records DESC, source, source_type, dest, dest_type, proto, dest_port, side, tier,
    policy, rule_index
