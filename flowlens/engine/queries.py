"""The named-query library, whatever engine runs it: query files, their headers and parameters.

Owns:

* :func:`load_queries` — the ``queries/*.sql`` files shipped in the package, plus the user's own
  folders (which add queries or override shipped ones by file name), parsed into
  :class:`QuerySpec` values;
* :func:`parse_query` and :func:`check_query` — reading one file's header, and finding the
  parameters it uses without declaring them (or declares without using);
* :func:`bind_params` — the values a run binds: given values checked and converted to the
  declared types (:func:`coerce_param_value`), defaults filled in;
* :func:`describe_query` and :func:`list_queries` — what ``flowlens queries`` shows: one query's
  header and SQL, and the list (helpers only when asked for).

Query file header (a leading block of ``--`` comment lines)::

    -- name: denied                (optional; must equal the file stem)
    -- description: One line.
    -- Any other comment lines: the explanation (which reporter the counts use, and so on).
    -- param: namespace VARCHAR = NULL  -- only flows touching this namespace
    -- param: min_bytes BIGINT = 0      -- defaults: NULL, numbers, TRUE/FALSE or 'text'
    -- param: ports INTEGER[]           -- no default: required; a list (CLI: comma-separated)
    -- used-by: report                  (a helper: run by this command, not a question of its own)
    -- requires: coverage_facts        (a helper that reads a table its own command registers)

Parameters are referenced as ``$name`` and always bound by the engine, never formatted into SQL.
Nothing here knows which engine runs a query: :mod:`flowlens.engine.duckdb` runs them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from flowlens.engine.window import as_utc
from flowlens.errors import QueryError

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
    #: what runs this helper query (``-- used-by: report``): it answers no question of its own.
    used_by: tuple[str, ...] = ()

    @property
    def helper(self) -> bool:
        """A query other commands run (``used-by`` or ``requires``), listed only on request."""
        return bool(self.used_by or self.requires)

    def param(self, name: str) -> QueryParam | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


_HEADER_KEY = re.compile(r"^(name|description|param|requires|used-by)\s*:\s*(.*)$")
_PARAM = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>[A-Za-z]+(?:\[\])?)"
    r"(?:\s*=\s*(?P<default>'(?:[^']|'')*'|[^\s-][^\s]*))?"
    r"\s*(?:--\s*(?P<doc>.*))?$"
)
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
#: Comments, string literals and quoted names: SQL text that is never code.
SQL_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)


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
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(f"{where} expects {type_}, got {value!r}") from None


def used_params(sql: str) -> frozenset[str]:
    """Names of the ``$name`` parameters an SQL text uses (outside comments and string literals)."""
    return frozenset(_PARAM_REF.findall(SQL_NOISE.sub(" ", sql)))


def split_header(text: str) -> tuple[list[str], str]:
    """The leading ``--`` comment block of an SQL file, each line without its ``--``, and the SQL after it.

    Blank lines may sit between header lines; the SQL loses surrounding blanks and a final ``;``.
    """
    comments: list[str] = []
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
        comments.append(stripped[2:].strip())
    return comments, "\n".join(lines[body_start:]).strip().rstrip(";").strip()


def parse_query(text: str, name: str, origin: str) -> QuerySpec:
    """Parse one query file. Raises :class:`QueryError` when its header is malformed."""
    description = ""
    explanation: list[str] = []
    params: list[QueryParam] = []
    requires: list[str] = []
    used_by: list[str] = []
    comments, sql = split_header(text)
    for content in comments:
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
        elif kind == "used-by":
            used_by.extend(t.strip() for t in rest.split(",") if t.strip())
        else:
            params.append(_parse_param(rest, name, origin))
    if not description:
        raise QueryError(f"{origin}: no '-- description: ...' line in the header comment; add one")
    seen: set[str] = set()
    for param in params:
        if param.name in seen:
            raise QueryError(f"{origin}: parameter {param.name!r} is declared twice")
        seen.add(param.name)
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
        used_by=tuple(used_by),
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


def bind_params(spec: QuerySpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameter values a run of ``spec`` binds: given values checked and typed, defaults filled.

    Only the parameters the SQL uses are returned. Raises :class:`QueryError` for an unknown
    parameter, a missing required one, a value of the wrong type, or SQL that uses a parameter
    its header does not declare.
    """
    name = spec.name
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


def describe_query(spec: QuerySpec) -> str:
    """What ``flowlens queries NAME`` prints: the description, explanation, parameters and SQL."""
    lines = [f"{spec.name}: {spec.description}", "", spec.explanation, "", "parameters:"]
    lines += [f"  {p.signature()}  -- {p.doc}" if p.doc else f"  {p.signature()}" for p in spec.params]
    if not spec.params:
        lines.append("  (none)")
    lines += ["", f"-- from {spec.origin}", spec.sql]
    return "\n".join(lines) + "\n"


def list_queries(specs: Mapping[str, QuerySpec], *, helpers: bool = False) -> dict[str, list[str]]:
    """The columns of ``flowlens queries``: name, description and parameters of each query that
    answers a question; with ``helpers``, the helper queries too, and who runs each
    (``used_by``) and the tables it needs (``requires``)."""
    shown = [spec for spec in specs.values() if helpers or not spec.helper]
    columns = {
        "name": [s.name for s in shown],
        "description": [s.description for s in shown],
        "parameters": [", ".join(p.signature() for p in s.params) for s in shown],
    }
    if helpers:
        columns["used_by"] = [", ".join(s.used_by) for s in shown]
        columns["requires"] = [", ".join(s.requires) for s in shown]
    return columns
