-- name: coverage-state
-- description: The sets a report compares with the previous run: talkers, external destinations, denied flows.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). kind 'talker': an allowed connection
-- between two endpoints (source -> destination proto/port), counted once as in coverage-edges;
-- kind 'external': an allowed egress destination on the internet (first DNS name, else IP, else
-- 'pub') with proto/port; kind 'denied': a denied flow (source -> destination proto/port and
-- the reporter that denied it). Endpoints are '<namespace>/<name_aggr>', or the bare name when not namespaced
-- ('pub', 'pvt', a host name).
SELECT DISTINCT
    'talker' AS kind,
    CASE source_namespace WHEN '-' THEN '' ELSE source_namespace || '/' END || source_name_aggr || ' -> '
        || CASE dest_namespace WHEN '-' THEN '' ELSE dest_namespace || '/' END || dest_name_aggr
        || ' ' || proto || '/' || coalesce(CAST(dest_port AS VARCHAR), '*') AS item
FROM coverage_facts
WHERE action = 'allow'
  AND ((reporter = 'dst' AND dest_type IN ('wep', 'hep'))
    OR (reporter = 'src' AND dest_type NOT IN ('wep', 'hep')))
UNION ALL
SELECT DISTINCT
    'external',
    external_dest || ' ' || proto || '/' || coalesce(CAST(dest_port AS VARCHAR), '*')
FROM coverage_facts
WHERE action = 'allow' AND reporter = 'src' AND external_dest IS NOT NULL
UNION ALL
SELECT DISTINCT
    'denied',
    CASE source_namespace WHEN '-' THEN '' ELSE source_namespace || '/' END || source_name_aggr || ' -> '
        || CASE dest_namespace WHEN '-' THEN '' ELSE dest_namespace || '/' END || dest_name_aggr
        || ' ' || proto || '/' || coalesce(CAST(dest_port AS VARCHAR), '*') || ' at ' || reporter
FROM coverage_facts
WHERE action = 'deny'
ORDER BY kind, item
