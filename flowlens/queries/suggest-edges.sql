-- name: suggest-edges
-- description: Observed traffic touching the chosen namespaces, grouped per reporter into the edges policy suggestions are made from.
-- used-by: suggest
-- One row per (reporter, verdict, source endpoint, destination endpoint, proto, dest_port) with the
-- endpoint's logged labels and IP kept as they are: labels are intersections over the pods a
-- record aggregates (Calico aggregation level 2), and IPs are NULL when aggregated, so suggest
-- intersects labels per workload and uses IPs only where they were logged.
-- Both reporters are kept and never summed together: the same connection is reported by the source
-- ('src', egress side) and by the destination ('dst', ingress side); suggest takes the larger of
-- the two counts for an edge. connections = num_flows_started (connections that started in the
-- interval); live_connections = the largest num_flows of a record (connections seen at all, which
-- counts long-lived connections that started before the window).
-- bytes = bytes_in + bytes_out of the reporting endpoint. first_seen/last_seen are the export
-- interval bounds (start_time, end_time) of the records.
-- Only reporter 'src' and 'dst' records are read ('fwd' transit records describe no endpoint policy).
-- Label sets are grouped by a 64-bit hash of their entries sorted by key, and one of the maps is
-- kept (any_value): Felix writes a pod's labels in any order, and a MAP's own hash follows its
-- order (one label set in shuffled orders made hundreds of groups of one workload). Grouping on
-- the MAP itself hashes and compares whole maps per row and took about 70 % longer on 10 M
-- records. Two different label sets of one endpoint would have to collide in 64 bits to be
-- merged. hash() is DuckDB's; on Spark, xxhash64 likewise.
-- param: namespaces VARCHAR[]  -- flows whose source or destination namespace is one of these
SELECT
    reporter,
    action,
    source_type,
    coalesce(source_namespace, '-') AS source_namespace,
    coalesce(source_name_aggr, '-') AS source_name_aggr,
    source_ip,
    hash(list_sort(map_entries(source_labels))) AS source_labels_hash,
    any_value(source_labels) AS source_labels,
    dest_type,
    coalesce(dest_namespace, '-') AS dest_namespace,
    coalesce(dest_name_aggr, '-') AS dest_name_aggr,
    dest_ip,
    hash(list_sort(map_entries(dest_labels))) AS dest_labels_hash,
    any_value(dest_labels) AS dest_labels,
    proto,
    dest_port,
    count(*) AS records,
    sum(coalesce(num_flows_started, 0)) AS connections,
    max(coalesce(num_flows, 0)) AS live_connections,
    sum(coalesce(bytes_in, 0) + coalesce(bytes_out, 0)) AS bytes,
    min(start_time) AS first_seen,
    max(end_time) AS last_seen
FROM flows
WHERE reporter IN ('src', 'dst')
    AND (list_contains($namespaces, source_namespace) OR list_contains($namespaces, dest_namespace))
GROUP BY ALL
