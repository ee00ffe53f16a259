-- name: suggest-namespaces
-- description: Namespaces that have pods (wep endpoints) in the window, with their record counts, for --all-namespaces.
-- used-by: suggest
-- A namespace counts when a pod of it is the source or the destination of any record, whichever
-- side reported it. Reads flow_summary (the window's records grouped by hour, endpoints, port,
-- reporter and verdict; records = how many records each group holds): the same counts as the
-- records themselves, from the stored hourly summaries for whole hours, so a long window reads
-- a small fraction of the rows.
SELECT namespace, sum(records) AS records
FROM (
    SELECT source_namespace AS namespace, CAST(sum(records) AS BIGINT) AS records
    FROM flow_summary WHERE source_type = 'wep' AND source_namespace IS NOT NULL GROUP BY 1
    UNION ALL
    SELECT dest_namespace AS namespace, CAST(sum(records) AS BIGINT) AS records
    FROM flow_summary WHERE dest_type = 'wep' AND dest_namespace IS NOT NULL GROUP BY 1
) AS t
GROUP BY namespace
ORDER BY namespace
