-- name: coverage-facts
-- description: One scan of the flows in the window, grouped into the facts every coverage metric is computed from.
-- used-by: report
-- Each row is a group of flow records with the same reporter, verdict, decision, endpoints, port,
-- deciding policy hit, pending (staged) deny and external destination; records, connections and
-- bytes are summed. Both reporters are kept: the coverage-* queries pick reporter 'dst' for
-- ingress and 'src' for egress. fwd (transit) records are not read.
-- The deciding hit is the one hit of the enforced trace that is not a pass: Calico stops the trace
-- at the first allow or deny, so there is exactly one (NULL when the policies were not logged).
-- Found by action rather than by position, because Calico writes trace arrays in random order.
-- decision (allowed records only): 'explicit' when the deciding hit is an allow of a policy: tiers
-- never default to allow, so such an allow comes from a rule (rule_index >= 0; an unknown index,
-- as in 4-part hits, counts too); 'profile' when the deciding hit is the Profile (kns.<namespace>):
-- no policy selected the endpoint, or every tier passed (pass rules, end-of-tier pass with
-- rule_index -1) and the profile allowed it; 'unknown' when the policies were not logged.
-- policy_hit is the deciding hit in Calico's modern string form (the POLICY_HIT 'hit' field,
-- '<index>|<tier>|<kind>:[<namespace>/]<name>|<action>|<rule_index>'); policy_tier, decided_by (its
-- name part, e.g. 'knp:db/allow-api', as the unexpected-allowed query spells it) and end_of_tier
-- (rule_index -1) are read from it after grouping. staged_deny: allowed now, but the pending trace
-- (staged policies treated as enforced) denies it; pending_by names that hit.
-- connections = num_flows_started (the connections that began in the window, as in the denied
-- and unexpected-allowed queries: Calico decides a connection when it starts, bytes weigh long
-- ones); bytes = bytes_in + bytes_out of the reporting endpoint.
-- Reads flow_summary (the window's records grouped by hour and by every key used here, with the
-- deciding hits already extracted; see flowlens.store.summaries), so a report decodes no policy trace
-- at query time; the answer is the same as grouping the flows view.
WITH grouped AS (
    SELECT
        reporter,
        action,
        source_type,
        source_namespace,
        source_name_aggr,
        dest_type,
        dest_namespace,
        dest_name_aggr,
        proto,
        dest_port,
        enforced_deciding_hit AS policy_hit,
        CASE WHEN action = 'allow' THEN pending_deny_hit END AS pending_deny,
        external_dest,
        CAST(sum(records) AS BIGINT) AS records,
        CAST(coalesce(sum(connections), 0) AS BIGINT) AS connections,
        CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
    FROM flow_summary
    WHERE reporter IN ('src', 'dst')
    GROUP BY ALL
)
SELECT
    reporter,
    action,
    CASE
        WHEN action <> 'allow' THEN NULL
        WHEN split_part(policy_hit, '|', 3) LIKE 'pro:%' THEN 'profile'
        WHEN split_part(policy_hit, '|', 4) = 'allow' THEN 'explicit'
        ELSE 'unknown'
    END AS decision,
    source_type,
    coalesce(source_namespace, '-') AS source_namespace,
    coalesce(source_name_aggr, '-') AS source_name_aggr,
    dest_type,
    coalesce(dest_namespace, '-') AS dest_namespace,
    coalesce(dest_name_aggr, '-') AS dest_name_aggr,
    proto,
    dest_port,
    policy_hit,
    nullif(split_part(policy_hit, '|', 2), '') AS policy_tier,
    nullif(split_part(policy_hit, '|', 3), '') AS decided_by,
    coalesce(split_part(policy_hit, '|', 5) = '-1', FALSE) AS end_of_tier,
    pending_deny IS NOT NULL AS staged_deny,
    nullif(split_part(pending_deny, '|', 3), '') AS pending_by,
    external_dest,
    records,
    connections,
    bytes
FROM grouped
