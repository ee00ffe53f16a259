-- name: policy-flow-keys
-- description: Distinct flow keys (reporter, both endpoints with their labels, protocol, port) with the recorded verdict and counts, for policy replay (flowlens simulate).
-- used-by: simulate
-- One row per distinct (reporter, source endpoint, destination endpoint, proto, dest_port,
-- recorded action). The policy engine evaluates each key once, so replaying millions of
-- records costs one evaluation per row of this query. The recorded traces are left out on
-- purpose (reading them costs a third of the scan); policy-flow-traces adds them.
-- Endpoint columns are kept as Calico wrote them (name '-' when aggregated, IP null when
-- masked); labels are the MAP columns (null when labels were not logged).
-- Only records reported by the source (egress) or the destination (ingress) are replayed; the
-- forwarded-traffic reporters (fwd...) are left out.
-- records = number of records; num_flows = sum(num_flows); bytes = bytes_in + bytes_out.
-- Labels are grouped by a hash of their entries sorted by key (Felix writes a pod's labels in
-- any order; a MAP's own hash follows it) and taken with first(): grouping on a MAP is
-- several times slower, and two different label sets of one endpoint colliding on a 64-bit
-- hash is not a practical concern (the replay re-checks the labels it gets).
-- param: namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace
-- param: since TIMESTAMPTZ = NULL  -- only records that start at or after this time
-- param: until TIMESTAMPTZ = NULL  -- only records that start before this time
SELECT
    reporter,
    source_type,
    source_namespace,
    source_name,
    source_name_aggr,
    source_ip,
    first(source_labels) AS source_labels,
    dest_type,
    dest_namespace,
    dest_name,
    dest_name_aggr,
    dest_ip,
    first(dest_labels) AS dest_labels,
    proto,
    dest_port,
    action,
    count(*) AS records,
    sum(coalesce(num_flows, 0)) AS num_flows,
    sum(coalesce(bytes_in, 0) + coalesce(bytes_out, 0)) AS bytes
FROM flows
WHERE reporter IN ('src', 'dst')
    AND ($namespace IS NULL OR source_namespace = $namespace OR dest_namespace = $namespace)
    AND ($since IS NULL OR start_time >= $since)
    AND ($until IS NULL OR start_time < $until)
GROUP BY
    reporter, source_type, source_namespace, source_name, source_name_aggr, source_ip,
    hash(list_sort(map_entries(source_labels))),
    dest_type, dest_namespace, dest_name, dest_name_aggr, dest_ip,
    hash(list_sort(map_entries(dest_labels))),
    proto, dest_port, action
