-- name: coverage-facts
-- description: One scan of the flows in the window, grouped into the facts every coverage metric is computed from.
-- Each row is a group of flow records with the same reporter, verdict, decision, endpoints, port,
-- denying policy hit and external destination; records, connections (num_flows_started) and bytes
-- (bytes_in + bytes_out of the reporting endpoint) are summed. Both reporters are kept: the
-- coverage queries pick reporter 'dst' for ingress and 'src' for egress.
-- decision (allowed records only): 'explicit' when the enforced trace has an allow hit of a policy
-- (not the profile, not an end-of-tier hit): Calico tiers never default to allow, so an allow that
-- is not the profile's was made by a policy rule (rule_index >= 0; an unknown rule index, as in
-- 4-part hits, counts too); 'profile' when the trace contains a Profile hit (the default
-- kns.<namespace> profile decided, including pass chains and end-of-tier passes that fall through
-- to the profile); 'unknown' when the policies were not logged.
-- The deny_* columns describe the hit that denied a denied record (NULL when not logged).
-- connections = num_flows_started: the connections that began in the window, as in the denied and
-- unexpected-allowed queries (Calico decides a connection when it starts; bytes weigh long ones).
-- Order-independent on purpose: Calico writes trace arrays in random order.
-- DuckDB lambdas (list_filter) transpile to Spark's FILTER with sqlglot.
WITH hits AS (
    SELECT
        reporter,
        action,
        CASE
            WHEN action <> 'allow' THEN NULL
            WHEN enforced_policies IS NULL OR len(enforced_policies) = 0 THEN 'unknown'
            WHEN len(list_filter(enforced_policies, lambda h: h.kind = 'Profile')) > 0 THEN 'profile'
            WHEN len(list_filter(enforced_policies,
                lambda h: h.action = 'allow' AND coalesce(h.rule_index, 0) <> -1)) > 0 THEN 'explicit'
            ELSE 'unknown'
        END AS decision,
        CASE WHEN action = 'deny' THEN list_filter(enforced_policies, lambda h: h.action = 'deny')[1] END AS deny_hit,
        action = 'allow' AND pending_policies IS NOT NULL
            AND len(list_filter(pending_policies, lambda h: h.action = 'deny')) > 0 AS staged_deny,
        source_type,
        coalesce(source_namespace, '-') AS source_namespace,
        coalesce(source_name_aggr, '-') AS source_name_aggr,
        dest_type,
        coalesce(dest_namespace, '-') AS dest_namespace,
        coalesce(dest_name_aggr, '-') AS dest_name_aggr,
        proto,
        dest_port,
        CASE
            WHEN dest_type = 'net' AND dest_name_aggr = 'pub'
                THEN coalesce(dest_domains[1], dest_ip, 'pub')
        END AS external_dest,
        coalesce(num_flows_started, 0) AS connections,
        coalesce(bytes_in, 0) + coalesce(bytes_out, 0) AS bytes
    FROM flows
    WHERE reporter IN ('src', 'dst')
)
SELECT
    reporter,
    action,
    decision,
    source_type,
    source_namespace,
    source_name_aggr,
    dest_type,
    dest_namespace,
    dest_name_aggr,
    proto,
    dest_port,
    deny_hit.tier AS deny_tier,
    deny_hit.kind AS deny_kind,
    deny_hit.namespace AS deny_namespace,
    deny_hit.name AS deny_name,
    coalesce(deny_hit.rule_index = -1, FALSE) AS deny_end_of_tier,
    coalesce(staged_deny, FALSE) AS staged_deny,
    external_dest,
    count(*) AS records,
    sum(connections) AS connections,
    sum(bytes) AS bytes
FROM hits
GROUP BY ALL
