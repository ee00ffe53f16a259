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
-- the window; bytes = bytes_in + bytes_out (a missing counter counts 0).
-- Columns: category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by, why,
-- records, connections, bytes, first_seen, last_seen.
-- Ranked by connections, then bytes, then the key columns.
-- Reads flow_summary: the window's records grouped by hour, endpoints, port, reporter, verdict and
-- deciding hits (see flowlens.store.summaries), which the engine reads from the hourly summaries stored
-- beside the flows where it can; the answer is the same as grouping the flows view. The deciding
-- hit is the last element of the trace: the store keeps every trace sorted by policy_index
-- (ingest sorts Calico's unordered sets). kind, name, action and rule are read back from the two
-- deciding hits' modern strings; categories and display columns are computed on the groups. Plain
-- SQL; sqlglot transpiles it to Spark.
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
-- param: category VARCHAR = NULL  -- only this category (default-allow, public-ingress, ...)
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
        enforced_last_hit AS enforced_hit,
        pending_last_hit AS pending_hit,
        SUM(records) AS records,
        SUM(connections) AS connections,
        SUM(bytes) AS bytes,
        MIN(first_seen) AS first_seen,
        MAX(last_seen) AS last_seen
    FROM flow_summary
    WHERE action = 'allow'
        AND reporter IN ('src', 'dst')
        AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    GROUP BY
        source_type, source_namespace, source_name_aggr, dest_type, dest_namespace, dest_name_aggr, proto, dest_port,
        reporter, enforced_last_hit, pending_last_hit
),
a AS (
    SELECT
        endpoint_name(source_type, source_namespace, source_name_aggr) AS source,
        source_type,
        source_namespace,
        endpoint_name(dest_type, dest_namespace, dest_name_aggr) AS dest,
        dest_type,
        dest_namespace,
        proto,
        dest_port,
        reporter,
        CASE reporter WHEN 'src' THEN 'egress at source' ELSE 'ingress at destination' END AS side,
        COALESCE(NULLIF(split_part(enforced_hit, '|', 3), ''), 'unknown (no enforced trace)') AS allowed_by,
        split_part(pending_hit, '|', 2) AS pending_tier,
        split_part(pending_hit, '|', 3) AS pending_by,
        split_part(pending_hit, '|', 4) AS pending_action,
        TRY_CAST(split_part(pending_hit, '|', 5) AS INTEGER) AS pending_rule,
        records,
        connections,
        bytes,
        first_seen,
        last_seen
    FROM g
),
k AS (
    -- One row per category, joined to every group below: a join condition that names the
    -- category cannot be pushed under the aggregation into the per-record scan.
    SELECT category
    FROM (
        VALUES ('default-allow'), ('public-ingress'), ('public-egress'), ('cross-namespace'), ('staged-deny'),
            ('host-endpoint')
    ) AS t (category)
    WHERE $category IS NULL OR category = $category
),
c AS (
    SELECT
        k.category,
        a.source,
        a.source_type,
        a.dest,
        a.dest_type,
        a.proto,
        a.dest_port,
        a.side,
        a.allowed_by,
        CASE k.category
            WHEN 'default-allow' THEN
                'no policy decided at the '
                || CASE a.reporter WHEN 'src' THEN 'source (egress)' ELSE 'destination (ingress)' END
                || '; the profile ' || substr(a.allowed_by, 5) || ' allowed it by default'
            WHEN 'public-ingress' THEN 'from the internet into pod ' || a.dest || ', allowed by ' || a.allowed_by
            WHEN 'public-egress' THEN a.source || ' talks to the internet, allowed by ' || a.allowed_by
            WHEN 'cross-namespace' THEN
                'from namespace ' || a.source_namespace || ' into namespace ' || a.dest_namespace
                || ', allowed by ' || a.allowed_by
            WHEN 'staged-deny' THEN
                'allowed now by ' || a.allowed_by || ', but the pending trace ends in deny by ' || a.pending_by
                || CASE
                    WHEN a.pending_rule = -1 THEN ' (end of tier ' || a.pending_tier || ')'
                    WHEN a.pending_rule >= 0 THEN ' rule ' || CAST(a.pending_rule AS VARCHAR)
                    ELSE ''
                END
                || ': a staged policy would break it'
            ELSE 'host ' || a.dest || ' accepts traffic from ' || a.source || ', allowed by ' || a.allowed_by
        END AS why,
        a.records,
        a.connections,
        a.bytes,
        a.first_seen,
        a.last_seen
    FROM a
    INNER JOIN k
        ON CASE k.category
            WHEN 'default-allow' THEN a.allowed_by LIKE 'pro:%'
            WHEN 'public-ingress' THEN
                a.source_type = 'net' AND a.source = 'pub' AND a.dest_type = 'wep' AND a.reporter = 'dst'
            WHEN 'public-egress' THEN
                a.dest_type = 'net' AND a.dest = 'pub' AND a.source_type IN ('wep', 'hep') AND a.reporter = 'src'
            WHEN 'cross-namespace' THEN
                a.source_type = 'wep' AND a.dest_type = 'wep' AND a.source_namespace <> a.dest_namespace
                AND a.reporter = 'dst'
            WHEN 'staged-deny' THEN a.pending_action = 'deny'
            WHEN 'host-endpoint' THEN a.dest_type = 'hep' AND a.reporter = 'dst'
            ELSE FALSE
        END
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
GROUP BY category, source, source_type, dest, dest_type, proto, dest_port, side, allowed_by, why
ORDER BY
    connections DESC, bytes DESC, records DESC, category, source, source_type, dest, dest_type, proto, dest_port,
    side, allowed_by, why
