-- name: suggest-namespaces
-- description: Namespaces that have pods (wep endpoints) in the window, with their record counts, for --all-namespaces.
-- used-by: suggest
-- A namespace counts when a pod of it is the source or the destination of any record, whichever
-- side reported it.
SELECT namespace, sum(records) AS records
FROM (
    SELECT source_namespace AS namespace, count(*) AS records
    FROM flows WHERE source_type = 'wep' AND source_namespace IS NOT NULL GROUP BY 1
    UNION ALL
    SELECT dest_namespace AS namespace, count(*) AS records
    FROM flows WHERE dest_type = 'wep' AND dest_namespace IS NOT NULL GROUP BY 1
) AS t
GROUP BY namespace
ORDER BY namespace
