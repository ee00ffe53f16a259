"""The query engine: a DuckDB connection with the ``flows`` view, and the named-query library.

Owns:

* :func:`connect` — a DuckDB connection (session time zone UTC) whose ``flows`` view covers the
  committed Parquet files of a time window. Files are chosen by their ``date=YYYY-MM-DD``
  partition directory, so partitions outside the window are never opened; rows are then filtered
  on ``start_time`` with bound values. A record belongs to the window when its ``start_time`` is
  in ``[since, until)`` — the same instant the ``date`` partition is derived from, so pruning and
  filtering agree. An empty store, or a window with no files, still has a ``flows`` view with the
  full schema (:data:`flowlens.schema.ARROW_SCHEMA` plus ``date``). Beside it, the
  ``flow_summary`` view: the same window's records grouped by hour and by the keys the grouping
  queries use (:mod:`flowlens.summary`), read from the stored hourly summaries for whole hours and
  grouped from the records for the rest, so that it is the same with or without them.
* :func:`parse_time` — ``30m`` / ``24h`` / ``7d`` / ``2w`` durations before *now*, or ISO-8601.
* :func:`load_queries` — the ``queries/*.sql`` files shipped in the package, plus the user's own
  folders (which add queries or override shipped ones by file name), parsed into
  :class:`QuerySpec` values.

Query file header (a leading block of ``--`` comment lines)::

    -- name: denied                (optional; must equal the file stem)
    -- description: One line.
    -- Any other comment lines: the explanation (which reporter the counts use, and so on).
    -- param: namespace VARCHAR = NULL  -- only flows touching this namespace
    -- param: min_bytes BIGINT = 0      -- defaults: NULL, numbers, TRUE/FALSE or 'text'
    -- param: ports INTEGER[]           -- no default: required; a list (CLI: comma-separated)

Parameters are referenced as ``$name`` and always bound by DuckDB, never formatted into SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from flowlens.errors import QueryError, StoreError, UsageError
from flowlens.schema import ARROW_SCHEMA, PARTITION_COLUMN
from flowlens.store import Store, duckdb_connection
from flowlens.store.summaries import SUMMARY_COLUMNS, summary_path, summary_sql

#: The full schema of the ``flows`` view: the stored columns, then the ``date`` partition column.
FLOWS_SCHEMA = ARROW_SCHEMA.append(pa.field(PARTITION_COLUMN.name, PARTITION_COLUMN.type))

#: Parameter types a query header may declare, with the Python types a value may have.
PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "VARCHAR": (str,),
    "INTEGER": (int,),
    "BIGINT": (int,),
    "DOUBLE": (float, int),
    "BOOLEAN": (bool,),
    "DATE": (dt.date,),
    "TIMESTAMP": (dt.datetime,),
    "TIMESTAMPTZ": (dt.datetime,),
}

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_HELP = "give a duration before now like 30m, 24h, 7d, 2w, or an ISO-8601 time like 2026-11-25T12:00:00Z"


def parse_time(text: str, now: dt.datetime, *, option: str = "time") -> dt.datetime:
    """An aware UTC datetime from a duration before ``now`` (``30m``, ``24h``, ``7d``) or ISO-8601.

    ISO-8601 text without an offset is taken as UTC; a bare date means its midnight UTC.
    Raises :class:`UsageError` naming ``option`` when the text is neither.
    """
    value = text.strip()
    if not value:
        raise UsageError(f"{option}: empty value; {_TIME_HELP}")
    match = _DURATION.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return _as_utc(now) - dt.timedelta(**{_DURATION_UNITS[unit]: amount})
    if value.lower() == "now":
        return _as_utc(now)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: cannot read {text!r}; {_TIME_HELP}") from None
    return _as_utc(parsed)


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# The query library


@dataclass(frozen=True)
class QueryParam:
    """One declared parameter of a named query."""

    name: str
    type: str
    default: Any = None
    required: bool = False
    doc: str = ""

    def signature(self) -> str:
        """``name TYPE = default`` as written in the header (``name TYPE`` when required)."""
        if self.required:
            return f"{self.name} {self.type}"
        return f"{self.name} {self.type} = {_literal(self.default)}"


@dataclass(frozen=True)
class QuerySpec:
    """A named query: its header, its SQL text, where it came from."""

    name: str
    description: str
    explanation: str
    params: tuple[QueryParam, ...]
    sql: str
    origin: str
    used_params: frozenset[str] = field(default_factory=frozenset)
    #: tables a helper query reads besides ``flows`` (``-- requires: coverage_facts``); such a
    #: query is run by the command that creates them, not on its own.
    requires: tuple[str, ...] = ()

    def param(self, name: str) -> QueryParam | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


_HEADER_KEY = re.compile(r"^(name|description|param|requires)\s*:\s*(.*)$")
_PARAM = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>[A-Za-z]+(?:\[\])?)"
    r"(?:\s*=\s*(?P<default>'(?:[^']|'')*'|[^\s-][^\s]*))?"
    r"\s*(?:--\s*(?P<doc>.*))?$"
)
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Comments and string literals, removed before looking for ``$name`` references.
_SQL_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _parse_default(text: str, type_: str, where: str) -> Any:
    if text.upper() == "NULL":
        return None
    if text.startswith("'"):
        return coerce_param_value(text[1:-1].replace("''", "'"), type_, where)
    return coerce_param_value(text, type_, where)


def coerce_param_value(value: Any, type_: str, where: str) -> Any:
    """``value`` as the Python value DuckDB binds for ``type_``; text is converted.

    Raises :class:`QueryError` naming ``where`` when the value does not fit the type.
    """
    if value is None:
        return None
    if type_.endswith("[]"):
        item_type = type_.removesuffix("[]")
        if isinstance(value, str):
            # Text from the command line: a comma-separated list.
            items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
            items = list(value)
        else:
            raise QueryError(f"{where} expects {type_} (a list, or comma-separated text), got {value!r}")
        return [coerce_param_value(v, item_type, where) for v in items]
    allowed = PARAM_TYPES[type_]
    if isinstance(value, bool) and bool not in allowed:
        raise QueryError(f"{where} expects {type_}, got {value!r}")
    if isinstance(value, allowed):
        return float(value) if type_ == "DOUBLE" and isinstance(value, int) else value
    if not isinstance(value, str):
        raise QueryError(f"{where} expects {type_}, got {value!r}")
    text = value.strip()
    try:
        if type_ == "VARCHAR":
            return value
        if type_ in ("INTEGER", "BIGINT"):
            return int(text)
        if type_ == "DOUBLE":
            return float(text)
        if type_ == "BOOLEAN":
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        if type_ == "DATE":
            return dt.date.fromisoformat(text)
        return _as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(f"{where} expects {type_}, got {value!r}") from None


def used_params(sql: str) -> frozenset[str]:
    """Names of the ``$name`` parameters an SQL text uses (outside comments and string literals)."""
    return frozenset(_PARAM_REF.findall(_SQL_NOISE.sub(" ", sql)))


def parse_query(text: str, name: str, origin: str) -> QuerySpec:
    """Parse one query file. Raises :class:`QueryError` when its header is malformed."""
    description = ""
    explanation: list[str] = []
    params: list[QueryParam] = []
    requires: list[str] = []
    body_start = 0
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            body_start = index + 1
            continue
        if not stripped.startswith("--"):
            break
        body_start = index + 1
        content = stripped[2:].strip()
        key = _HEADER_KEY.match(content)
        if key is None:
            explanation.append(content)
            continue
        kind, rest = key.group(1), key.group(2).strip()
        if kind == "name":
            if rest != name:
                raise QueryError(
                    f"{origin}: header says name {rest!r} but the file is named {name!r}; make them equal"
                )
        elif kind == "description":
            description = rest
        elif kind == "requires":
            requires.extend(t.strip() for t in rest.split(",") if t.strip())
        else:
            params.append(_parse_param(rest, name, origin))
    if not description:
        raise QueryError(f"{origin}: no '-- description: ...' line in the header comment; add one")
    seen: set[str] = set()
    for param in params:
        if param.name in seen:
            raise QueryError(f"{origin}: parameter {param.name!r} is declared twice")
        seen.add(param.name)
    sql = "\n".join(lines[body_start:]).strip().rstrip(";").strip()
    if not sql:
        raise QueryError(f"{origin}: the file has a header but no SQL")
    while explanation and not explanation[-1]:
        explanation.pop()
    return QuerySpec(
        name=name,
        description=description,
        explanation="\n".join(explanation).strip(),
        params=tuple(params),
        sql=sql,
        origin=origin,
        used_params=used_params(sql),
        requires=tuple(requires),
    )


def _parse_param(text: str, query: str, origin: str) -> QueryParam:
    match = _PARAM.match(text)
    if match is None:
        raise QueryError(
            f"{origin}: cannot read '-- param: {text}'; write it as "
            "'-- param: name TYPE = default  -- what it does' (no '= default' when required)"
        )
    type_ = match.group("type").upper()
    if type_.removesuffix("[]") not in PARAM_TYPES:
        raise QueryError(
            f"{origin}: parameter type {type_!r} is not one of {', '.join(PARAM_TYPES)} (or a list of one, TYPE[])"
        )
    name = match.group("name")
    default_text = match.group("default")
    where = f"{origin}: default of parameter {name!r}"
    return QueryParam(
        name=name,
        type=type_,
        default=None if default_text is None else _parse_default(default_text, type_, where),
        required=default_text is None,
        doc=(match.group("doc") or "").strip(),
    )


def package_queries_dir() -> Path:
    """The folder of query files shipped inside the installed package."""
    return Path(str(resources.files("flowlens").joinpath("queries")))


def load_queries(extra_dirs: Iterable[Path | str] = ()) -> dict[str, QuerySpec]:
    """Every named query: the shipped ones, then each of ``extra_dirs`` in order.

    A file in a later folder replaces a query of the same name from an earlier one.
    Returns a dict sorted by name.
    """
    found: dict[str, QuerySpec] = {}
    for folder in (package_queries_dir(), *(Path(d) for d in extra_dirs)):
        if not folder.is_dir():
            raise QueryError(f"queries folder {str(folder)!r} does not exist or is not a folder")
        for path in sorted(folder.glob("*.sql")):
            found[path.stem] = parse_query(path.read_text(encoding="utf-8"), path.stem, str(path))
    return dict(sorted(found.items()))


def check_query(spec: QuerySpec) -> list[str]:
    """Problems with a query's declared parameters: used but undeclared, declared but unused."""
    declared = set(spec.param_names)
    problems = [
        f"{spec.name}: uses ${p} but does not declare it" for p in sorted(spec.used_params - declared)
    ]
    problems += [
        f"{spec.name}: declares {p!r} but never uses ${p}" for p in sorted(declared - spec.used_params)
    ]
    return problems


# --------------------------------------------------------------------------------------------
# The engine


def _window_dates(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.date | None, dt.date | None]:
    first = since.date() if since is not None else None
    last = None
    if until is not None:
        # ``until`` is exclusive: a window ending at midnight does not need that day's partition.
        last = (
            until.date()
            if until.timetz() != dt.time(0, tzinfo=dt.UTC)
            else until.date() - dt.timedelta(days=1)
        )
    return first, last


def select_files(store: Store, since: dt.datetime | None, until: dt.datetime | None) -> list[Path]:
    """The committed Parquet files whose ``date=`` partition can hold rows of the window."""
    first, last = _window_dates(since, until)
    chosen = []
    for path in store.flow_files():
        if first is None and last is None:
            chosen.append(path)
            continue
        try:
            day = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        except ValueError:
            raise StoreError(
                f"partition folder {str(path.parent)!r} is not named date=YYYY-MM-DD; move it out of the store"
            ) from None
        if (first is None or day >= first) and (last is None or day <= last):
            chosen.append(path)
    return chosen


class Engine:
    """A DuckDB connection with the ``flows`` view and the named queries. Use as a context manager."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        store: Store,
        files: Sequence[Path],
        since: dt.datetime | None,
        until: dt.datetime | None,
        queries: Mapping[str, QuerySpec],
        relations: tuple[duckdb.DuckDBPyRelation, ...],
    ) -> None:
        self.con = con
        self.store = store
        self.files: tuple[Path, ...] = tuple(files)
        self.since = since
        self.until = until
        self.queries: Mapping[str, QuerySpec] = dict(queries)
        # Keep the relations behind the views alive for as long as the connection.
        self._relations = relations

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def query(self, name: str) -> QuerySpec:
        """The named query; :class:`QueryError` listing the valid names when there is none."""
        try:
            return self.queries[name]
        except KeyError:
            raise QueryError(f"no query named {name!r}; valid names: {', '.join(self.queries)}") from None

    def bind(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameter values a run of ``name`` binds: given values checked and typed, defaults filled."""
        spec = self.query(name)
        given = dict(params or {})
        unknown = sorted(set(given) - set(spec.param_names))
        if unknown:
            valid = ", ".join(spec.param_names) or "none"
            raise QueryError(
                f"query {name!r} has no parameter {', '.join(map(repr, unknown))}; valid parameters: {valid}"
            )
        problems = [p for p in check_query(spec) if "does not declare" in p]
        if problems:
            raise QueryError(f"{spec.origin}: " + "; ".join(problems) + "; declare it with '-- param: ...'")
        values: dict[str, Any] = {}
        for param in spec.params:
            if param.name in given:
                value = coerce_param_value(
                    given[param.name], param.type, f"parameter {param.name!r} of query {name!r}"
                )
            elif param.required:
                raise QueryError(f"query {name!r} needs parameter {param.name!r} ({param.type}); pass it")
            else:
                value = param.default
            if param.name in spec.used_params:
                values[param.name] = value
        return values

    def relation(self, name: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """The named query as a DuckDB relation (for callers who want to go on in SQL)."""
        values = self.bind(name, params)
        spec = self.query(name)
        try:
            return self.con.sql(spec.sql, params=values or None)
        except duckdb.CatalogException as exc:
            raise QueryError(
                f"query {name!r} ({spec.origin}) reads a table this connection does not have: {exc}. "
                "Named queries read the `flows` view; a query that reads another table (such as "
                "coverage_facts) is a helper that its own command runs after registering that table"
            ) from None
        except duckdb.Error as exc:
            raise QueryError(f"query {name!r} ({spec.origin}) failed: {exc}") from None

    def run(
        self, name: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run a named query with bound parameters; at most ``limit`` rows, in the query's order."""
        rel = self.relation(name, params)
        return self._fetch(rel, limit, f"query {name!r}")

    def sql(
        self, text: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run ad-hoc SQL against the ``flows`` view, with bound parameters."""
        try:
            rel = self.con.sql(text, params=dict(params) if params else None)
        except duckdb.Error as exc:
            raise QueryError(f"SQL failed: {exc}") from None
        if rel is None:
            return pa.table({})
        return self._fetch(rel, limit, "SQL")

    @staticmethod
    def _fetch(rel: duckdb.DuckDBPyRelation, limit: int | None, what: str) -> pa.Table:
        if limit is not None and limit < 0:
            raise QueryError(f"limit must be 0 or more, not {limit}")
        try:
            if limit is not None:
                rel = rel.limit(limit)
            return rel.to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(f"{what} failed: {exc}") from None


def connect(
    store: Store | Path | str,
    *,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    threads: int | None = None,
    query_dirs: Iterable[Path | str] = (),
    now: dt.datetime | None = None,
    summaries: bool = True,
) -> Engine:
    """An :class:`Engine` over the store's committed files in ``[since, until)``.

    ``since``/``until`` are aware datetimes (naive ones are UTC) or text for :func:`parse_time`
    relative to ``now`` (default: the current time). ``summaries=False`` builds the
    ``flow_summary`` view from the records alone, ignoring the stored hourly summaries (the
    result is the same; this is for checking that it is).
    """
    if not isinstance(store, Store):
        store = Store(Path(store))
    clock = now or dt.datetime.now(dt.UTC)
    since_at = _resolve(since, clock, "--since")
    until_at = _resolve(until, clock, "--until")
    if since_at is not None and until_at is not None and since_at >= until_at:
        raise UsageError(f"--since ({since_at.isoformat()}) must be before --until ({until_at.isoformat()})")
    queries = load_queries(query_dirs)
    files = select_files(store, since_at, until_at)

    con = duckdb_connection(threads)
    try:
        flows = _flows_relation(con, files, since_at, until_at)
        flows.create_view("flows")
        summary = _summary_relation(con, store, files, since_at, until_at, summaries)
        summary.create_view("flow_summary")
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"cannot read the store at {str(store.root)!r}: {exc}") from None
    except BaseException:
        con.close()
        raise
    return Engine(con, store, files, since_at, until_at, queries, (flows, summary))


def _resolve(value: dt.datetime | str | None, now: dt.datetime, option: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, now, option=option)
    return _as_utc(value)


def _flows_relation(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> duckdb.DuckDBPyRelation:
    columns = [duckdb.ColumnExpression(name) for name in FLOWS_SCHEMA.names]
    if not files:
        return con.from_arrow(FLOWS_SCHEMA.empty_table()).select(*columns)
    rel = con.read_parquet([str(f) for f in files], hive_partitioning=True, union_by_name=True)
    start = duckdb.ColumnExpression("start_time")
    if since is not None:
        rel = rel.filter(start >= duckdb.ConstantExpression(since))
    if until is not None:
        rel = rel.filter(start < duckdb.ConstantExpression(until))
    return rel.select(*columns)


def _hour_floor(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: dt.datetime) -> dt.datetime:
    floor = _hour_floor(at)
    return floor if floor == at else floor + dt.timedelta(hours=1)


def _summary_relation(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    files: Sequence[Path],
    since: dt.datetime | None,
    until: dt.datetime | None,
    use_summaries: bool,
) -> duckdb.DuckDBPyRelation:
    """The ``flow_summary`` view: :data:`flowlens.summary.SUMMARY_SQL` over the window's records.

    Whole hours inside ``[since, until)`` are read from the stored summaries of the files that
    have one; every other record of the window (the partial hours at its edges, and the files
    without a summary) is grouped here with the same SQL. An hour bucket holds the records whose
    ``start_time`` falls in it, and the window selects records by ``start_time``, so the two parts
    never overlap and together hold every record of the window exactly once.
    """
    lo = _hour_ceil(since) if since is not None else None
    hi = _hour_floor(until) if until is not None else None
    whole_hours = lo is None or hi is None or lo < hi
    stored_paths: dict[Path, Path] = {}
    if use_summaries and whole_hours:
        for flows_file in files:
            with contextlib.suppress(OSError):
                path = summary_path(store.root, flows_file)
                if path.is_file():
                    stored_paths[flows_file] = path
    summarised = list(stored_paths)
    done = set(summarised)
    raw_parts: list[duckdb.DuckDBPyRelation] = []
    if summarised:
        # Records of summarised files outside the whole hours: the window's partial edge hours.
        edges = [(since, lo), (hi, until)]
        rel = _flows_relation(con, summarised, since, until)
        start = duckdb.ColumnExpression("start_time")
        outside = None
        for low, high in edges:
            if low is None or high is None or low >= high:
                continue
            part = (start >= duckdb.ConstantExpression(low)) & (start < duckdb.ConstantExpression(high))
            outside = part if outside is None else outside | part
        if outside is not None:
            raw_parts.append(rel.filter(outside))
    rest = [f for f in files if f not in done]
    if rest or not summarised:
        raw_parts.append(_flows_relation(con, rest, since, until))
    grouped: list[duckdb.DuckDBPyRelation] = []
    for index, raw in enumerate(raw_parts):
        name = f"flowlens_summary_raw_{index}"
        raw.create_view(name)
        grouped.append(con.sql(summary_sql(name)))
    if summarised:
        stored = con.read_parquet([str(stored_paths[f]) for f in summarised])
        hour = duckdb.ColumnExpression("hour")
        if lo is not None:
            stored = stored.filter(hour >= duckdb.ConstantExpression(lo))
        if hi is not None:
            stored = stored.filter(hour < duckdb.ConstantExpression(hi))
        grouped.append(stored.select(*[duckdb.ColumnExpression(c) for c in SUMMARY_COLUMNS]))
    result = grouped[0]
    for other in grouped[1:]:
        result = result.union(other)
    return result
