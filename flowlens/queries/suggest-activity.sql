-- name: suggest-activity
-- description: On how many distinct export intervals and UTC days each observed edge of a suggestion was seen.
-- used-by: suggest
-- requires: suggest_sides
-- used-by: suggest
-- Reads suggest_sides (registered by flowlens.suggest.activity): one row per logged side of the
-- edges suggest read (type, namespace, name_aggr and, for sides that are not pods of a namespace,
-- ip), with the side_id of the workload or external side it belongs to. Pod sides match on
-- (type, namespace, name_aggr) whatever their IP (any_ip); the others on the IP too, NULL included.
-- An interval is one export interval of the flow logs: the most common record length of the same
-- flows (Calico Enterprise files and Goldmane's emitter: 300 s; at least 1 s), and a record
-- belongs to the interval its start_time falls in, counted from the Unix epoch, so records of
-- different nodes for the same interval count once. days = distinct UTC dates of start_time (the
-- date partition). Both reporters and both verdicts count: an edge was seen when any record
-- shows it. The row with every key NULL holds the totals of all these flows (the window's
-- intervals and days with traffic). Only reporter 'src' and 'dst' records are read, touching the
-- chosen namespaces, as in suggest-edges. Plain SQL; sqlglot transpiles it to Spark.
-- param: namespaces VARCHAR[]  -- flows whose source or destination namespace is one of these
WITH chosen AS (
    SELECT
        source_type,
        coalesce(source_namespace, '-') AS source_namespace,
        coalesce(source_name_aggr, '-') AS source_name_aggr,
        source_ip,
        dest_type,
        coalesce(dest_namespace, '-') AS dest_namespace,
        coalesce(dest_name_aggr, '-') AS dest_name_aggr,
        dest_ip,
        lower(proto) AS proto,
        CASE WHEN dest_port > 0 THEN dest_port END AS dest_port,
        start_time,
        end_time,
        date
    FROM flows
    WHERE reporter IN ('src', 'dst')
        AND (list_contains($namespaces, source_namespace) OR list_contains($namespaces, dest_namespace))
),
lengths AS (
    SELECT
        greatest(1, CAST(round(epoch(end_time) - epoch(start_time)) AS BIGINT)) AS seconds,
        count(*) AS records
    FROM chosen
    GROUP BY 1
),
span AS (
    SELECT coalesce(max(seconds), 300) AS seconds
    FROM (SELECT seconds FROM lengths ORDER BY records DESC, seconds DESC LIMIT 1) AS top_length
),
bucketed AS (
    SELECT
        s.side_id AS source_id,
        d.side_id AS dest_id,
        c.proto,
        c.dest_port,
        CAST(floor(epoch(c.start_time) / span.seconds) AS BIGINT) AS bucket,
        c.date,
        span.seconds AS interval_seconds
    FROM chosen AS c
    CROSS JOIN span
    JOIN suggest_sides AS s
        ON s.type = c.source_type
        AND s.namespace = c.source_namespace
        AND s.name_aggr = c.source_name_aggr
        AND (s.any_ip OR s.ip IS NOT DISTINCT FROM c.source_ip)
    JOIN suggest_sides AS d
        ON d.type = c.dest_type
        AND d.namespace = c.dest_namespace
        AND d.name_aggr = c.dest_name_aggr
        AND (d.any_ip OR d.ip IS NOT DISTINCT FROM c.dest_ip)
)
SELECT
    source_id,
    dest_id,
    proto,
    dest_port,
    count(DISTINCT bucket) AS intervals,
    count(DISTINCT date) AS days,
    max(interval_seconds) AS interval_seconds
FROM bucketed
GROUP BY GROUPING SETS ((source_id, dest_id, proto, dest_port), ())
