-- name: coverage-internet
-- description: Internet exposure per workload: ingress from and egress to public networks.
-- used-by: report
-- requires: coverage_facts
-- Reads coverage_facts (registered by flowlens.report.coverage). Ingress from the internet = records
-- reported by the destination (reporter 'dst') whose source is type net, name 'pub' (an address
-- outside 10/8, 172.16/12 and 192.168/16 that is no known endpoint); egress to the internet =
-- records reported by the source (reporter 'src') whose destination is net 'pub'. ports lists
-- proto/port pairs ('*' when the port was not logged); destinations counts distinct external
-- destinations (first DNS name, else IP, else 'pub').
SELECT
    direction,
    endpoint_type,
    namespace,
    name,
    coalesce(sum(connections) FILTER (WHERE action = 'allow'), 0) AS allowed_connections,
    coalesce(sum(connections) FILTER (WHERE decision = 'explicit'), 0) AS explicit_connections,
    coalesce(sum(connections) FILTER (WHERE decision = 'profile'), 0) AS profile_connections,
    coalesce(sum(connections) FILTER (WHERE action = 'deny'), 0) AS denied_connections,
    sum(bytes) AS bytes,
    list_sort(list_distinct(list(port_label))) AS ports,
    count(DISTINCT external_dest) AS destinations
FROM (
    SELECT
        CASE reporter WHEN 'dst' THEN 'ingress' ELSE 'egress' END AS direction,
        CASE reporter WHEN 'dst' THEN dest_type ELSE source_type END AS endpoint_type,
        CASE reporter WHEN 'dst' THEN dest_namespace ELSE source_namespace END AS namespace,
        CASE reporter WHEN 'dst' THEN dest_name_aggr ELSE source_name_aggr END AS name,
        proto || '/' || coalesce(CAST(dest_port AS VARCHAR), '*') AS port_label,
        action, decision, external_dest, connections, bytes
    FROM coverage_facts
    WHERE (reporter = 'dst' AND source_type = 'net' AND source_name_aggr = 'pub')
       OR (reporter = 'src' AND dest_type = 'net' AND dest_name_aggr = 'pub')
) AS exposed
GROUP BY direction, endpoint_type, namespace, name
ORDER BY direction, allowed_connections DESC, namespace, name
