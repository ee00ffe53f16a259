-- name: coverage-workloads
-- description: Per workload and direction: allowed connections and bytes by decision, denied traffic.
-- used-by: report
-- requires: coverage_facts
-- Reads the coverage_facts table (the result of coverage-facts, registered by flowlens.report.coverage).
-- Ingress counts the records reported by the destination (reporter 'dst': the destination's
-- ingress policy decided); egress counts the records reported by the source (reporter 'src').
-- A workload is namespace + aggregated name (name_aggr); host endpoints (type hep) have
-- namespace '-' and their host name. Network sets and networks never report, so they are absent.
SELECT
    direction,
    endpoint_type,
    namespace,
    name,
    sum(records) FILTER (WHERE action = 'allow') AS allowed_records,
    sum(records) FILTER (WHERE decision = 'explicit') AS explicit_records,
    sum(records) FILTER (WHERE decision = 'profile') AS profile_records,
    sum(records) FILTER (WHERE decision = 'unknown') AS unknown_records,
    sum(connections) FILTER (WHERE action = 'allow') AS allowed_connections,
    sum(connections) FILTER (WHERE decision = 'explicit') AS explicit_connections,
    sum(connections) FILTER (WHERE decision = 'profile') AS profile_connections,
    sum(connections) FILTER (WHERE decision = 'unknown') AS unknown_connections,
    sum(bytes) FILTER (WHERE action = 'allow') AS allowed_bytes,
    sum(bytes) FILTER (WHERE decision = 'explicit') AS explicit_bytes,
    sum(bytes) FILTER (WHERE decision = 'profile') AS profile_bytes,
    sum(bytes) FILTER (WHERE decision = 'unknown') AS unknown_bytes,
    sum(records) FILTER (WHERE action = 'deny') AS denied_records,
    sum(connections) FILTER (WHERE action = 'deny') AS denied_connections,
    sum(bytes) FILTER (WHERE action = 'deny') AS denied_bytes,
    sum(connections) FILTER (WHERE action = 'deny' AND end_of_tier) AS end_of_tier_denied_connections
FROM (
    SELECT
        CASE reporter WHEN 'dst' THEN 'ingress' ELSE 'egress' END AS direction,
        CASE reporter WHEN 'dst' THEN dest_type ELSE source_type END AS endpoint_type,
        CASE reporter WHEN 'dst' THEN dest_namespace ELSE source_namespace END AS namespace,
        CASE reporter WHEN 'dst' THEN dest_name_aggr ELSE source_name_aggr END AS name,
        action, decision, end_of_tier, records, connections, bytes
    FROM coverage_facts
) AS sides
WHERE endpoint_type IN ('wep', 'hep')
GROUP BY direction, endpoint_type, namespace, name
ORDER BY direction, endpoint_type, namespace, name
