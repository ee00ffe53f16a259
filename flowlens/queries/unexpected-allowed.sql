-- name: unexpected-allowed
-- description: Allowed flows that deserve a look, in named categories, each row saying why it is there.
-- Categories (a flow can be in several):
--   default-allow    no policy decided: the last enforced hit is the namespace profile
--                    (kns.<namespace>), so the traffic was allowed by default. Reported per side.
--   public-ingress   from the internet (source type net, 'pub') into a pod (dest type wep).
--   public-egress    from a pod or host to the internet (dest type net, 'pub').
--   cross-namespace  from a pod in one namespace to a pod in another.
--   staged-deny      allowed by the enforced trace, but the pending trace (staged policies
--                    treated as enforced) ends in deny: applying the staged policy would break it.
--                    Reported per side.
--   host-endpoint    into a host endpoint (dest type hep): traffic a node accepts.
-- Reporter rule: default-allow and staged-deny describe one side's policy, so each record counts
-- for its own side (side says which: 'egress at source' = reporter src, 'ingress at destination'
-- = reporter dst) and a connection is never counted twice within a row. The other categories
-- describe the connection, which both ends may report; they count the destination's report
-- (reporter dst) when the destination is a pod or host endpoint (public-ingress, cross-namespace,
-- host-endpoint) and the source's report (reporter src) when the destination is outside the
-- cluster (public-egress). fwd (transit) records are not read.
-- allowed_by is the last enforced hit of that side's trace (kind:namespace/name, as Calico's modern
-- flow-log format spells it). connections = sum(num_flows_started), the connections that began in
-- the window; bytes = bytes_in + bytes_out.
-- Columns: category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by, why,
-- records, connections, bytes, first_seen, last_seen.
-- Ranked by connections, then bytes, then the key columns.
-- Portable SQL except list_max (Spark: array_max; both compare structs field by field, so the
-- hit with the highest policy_index wins).
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
-- param: category VARCHAR = NULL  -- only this category (default-allow, public-ingress, ...)
WITH f AS (
    SELECT
        CASE
            WHEN source_type IN ('wep', 'ns') AND source_namespace <> '-'
                THEN source_namespace || '/' || source_name_aggr
            ELSE source_name_aggr
        END AS source,
        source_type,
        source_namespace,
        CASE
            WHEN dest_type IN ('wep', 'ns') AND dest_namespace <> '-'
                THEN dest_namespace || '/' || dest_name_aggr
            ELSE dest_name_aggr
        END AS dest,
        dest_type,
        dest_namespace,
        proto,
        dest_port,
        reporter,
        list_max(enforced_policies) AS enforced_hit,
        list_max(pending_policies) AS pending_hit,
        num_flows_started,
        bytes_in + bytes_out AS total_bytes,
        start_time,
        end_time
    FROM flows
    WHERE action = 'allow'
        AND reporter IN ('src', 'dst')
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
),
a AS (
    SELECT
        source,
        source_type,
        source_namespace,
        dest,
        dest_type,
        dest_namespace,
        proto,
        dest_port,
        reporter,
        CASE reporter WHEN 'src' THEN 'egress at source' ELSE 'ingress at destination' END AS side,
        enforced_hit.kind AS enforced_kind,
        enforced_hit.name AS enforced_name,
        COALESCE(split_part(enforced_hit.hit, '|', 3), 'unknown (no enforced trace)') AS allowed_by,
        pending_hit.action AS pending_action,
        split_part(pending_hit.hit, '|', 3) AS pending_by,
        pending_hit.tier AS pending_tier,
        pending_hit.rule_index AS pending_rule,
        COUNT(*) AS records,
        SUM(num_flows_started) AS connections,
        SUM(total_bytes) AS bytes,
        MIN(start_time) AS first_seen,
        MAX(end_time) AS last_seen
    FROM f
    GROUP BY
        source, source_type, source_namespace, dest, dest_type, dest_namespace, proto, dest_port, reporter,
        enforced_hit.kind, enforced_hit.name, split_part(enforced_hit.hit, '|', 3),
        pending_hit.action, split_part(pending_hit.hit, '|', 3), pending_hit.tier, pending_hit.rule_index
),
c AS (
    SELECT
        'default-allow' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        'no policy decided at the ' || CASE reporter WHEN 'src' THEN 'source (egress)' ELSE 'destination (ingress)' END
            || '; the profile ' || COALESCE(enforced_name, '?') || ' allowed it by default' AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE enforced_kind = 'Profile'
    UNION ALL
    SELECT
        'public-ingress' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        'from the internet into pod ' || dest || ', allowed by ' || allowed_by AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE source_type = 'net' AND source = 'pub' AND dest_type = 'wep' AND reporter = 'dst'
    UNION ALL
    SELECT
        'public-egress' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        source || ' talks to the internet, allowed by ' || allowed_by AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE dest_type = 'net' AND dest = 'pub' AND source_type IN ('wep', 'hep') AND reporter = 'src'
    UNION ALL
    SELECT
        'cross-namespace' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        'from namespace ' || source_namespace || ' into namespace ' || dest_namespace || ', allowed by ' || allowed_by
            AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE source_type = 'wep' AND dest_type = 'wep' AND source_namespace <> dest_namespace AND reporter = 'dst'
    UNION ALL
    SELECT
        'staged-deny' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        'allowed now by ' || allowed_by || ', but the pending trace ends in deny by ' || COALESCE(pending_by, '?')
            || CASE
                WHEN pending_rule = -1 THEN ' (end of tier ' || COALESCE(pending_tier, '?') || ')'
                WHEN pending_rule >= 0 THEN ' rule ' || CAST(pending_rule AS VARCHAR)
                ELSE ''
            END
            || ': a staged policy would break it' AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE pending_action = 'deny'
    UNION ALL
    SELECT
        'host-endpoint' AS category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by,
        'host ' || dest || ' accepts traffic from ' || source || ', allowed by ' || allowed_by AS why,
        records, connections, bytes, first_seen, last_seen
    FROM a
    WHERE dest_type = 'hep' AND reporter = 'dst'
)
SELECT
    category,
    source,
    source_type,
    dest,
    dest_type,
    proto,
    dest_port,
    side,
    allowed_by,
    why,
    CAST(SUM(records) AS BIGINT) AS records,
    CAST(SUM(connections) AS BIGINT) AS connections,
    CAST(SUM(bytes) AS BIGINT) AS bytes,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen
FROM c
WHERE $category IS NULL OR category = $category
GROUP BY category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by, why
ORDER BY
    connections DESC, bytes DESC, records DESC, category, source, dest, proto, dest_port, side, allowed_by, why
