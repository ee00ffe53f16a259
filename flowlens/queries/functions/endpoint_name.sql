-- function: endpoint_name(type, namespace, name_aggr)
-- description: The display name of a flow-log endpoint, as every query shows it.
-- 'namespace/aggregated-name' for pods (type wep) and namespaced network sets (ns); the name alone
-- for global network sets (ns, namespace '-'), networks (net: 'pub' the internet, 'pvt' a private
-- network) and host endpoints (hep: the hostname). NULL when the name is NULL.
-- Call it with one side's columns: endpoint_name(source_type, source_namespace, source_name_aggr).
-- Queries call it on their groups, after aggregating on the raw columns, so it costs nothing per
-- record. Each engine defines it from this file: DuckDB as a macro; an engine without SQL
-- functions puts the expression in place of each call before it runs a query.
CASE
    WHEN type IN ('wep', 'ns') AND namespace <> '-' THEN namespace || '/' || name_aggr
    ELSE name_aggr
END
