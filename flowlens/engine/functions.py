"""SQL functions the engines define for the queries: one definition of what several queries compute.

Owns :func:`load_functions`, which reads the ``queries/functions/*.sql`` files shipped in the
package, and :func:`inline_functions`, which writes a function's expression in place of each call.
A function file holds one scalar SQL expression over its parameters (plain SQL that sqlglot
transpiles to Spark), under a header::

    -- function: endpoint_name(type, namespace, name_aggr)
    -- description: One line.
    -- Any other comment lines: the explanation.
    CASE WHEN type IN ('wep', 'ns') AND namespace <> '-' THEN namespace || '/' || name_aggr ELSE name_aggr END

The DuckDB engine defines each as a macro, which DuckDB expands where a query calls it, so a query
that calls a function on its groups costs what the written-out expression costs. An engine
without SQL functions runs :func:`inline_functions` on a query first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flowlens.engine.queries import SQL_NOISE, package_queries_dir, split_header
from flowlens.errors import QueryError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SIGNATURE = re.compile(rf"^function\s*:\s*(?P<name>{_IDENT})\s*\((?P<params>[^)]*)\)\s*$")
_DESCRIPTION = re.compile(r"^description\s*:\s*(.*)$")
# String literals, left alone when parameters are put in place.
_LITERAL = re.compile(r"'(?:[^']|'')*'")
# A call's argument: a column, optionally qualified by its table (``a.source_type``).
_ARGUMENT = re.compile(rf"^{_IDENT}(?:\.{_IDENT})?$")


@dataclass(frozen=True)
class SqlFunction:
    """A scalar SQL function: its name, parameter names and the expression that computes it."""

    name: str
    params: tuple[str, ...]
    description: str
    explanation: str
    body: str
    origin: str

    def expand(self, arguments: tuple[str, ...]) -> str:
        """The body on one line, each parameter replaced by the argument in its place, in parentheses."""
        if len(arguments) != len(self.params):
            raise QueryError(
                f"{self.name} takes {len(self.params)} arguments ({', '.join(self.params)}), "
                f"not {len(arguments)}"
            )
        values = dict(zip(self.params, arguments, strict=True))
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, self.params)) + r")\b")
        parts = []
        position = 0
        for literal in _LITERAL.finditer(self.body):
            parts.append(_code(self.body[position : literal.start()], pattern, values))
            parts.append(literal.group(0))
            position = literal.end()
        parts.append(_code(self.body[position:], pattern, values))
        return "(" + "".join(parts) + ")"


def _code(text: str, pattern: re.Pattern[str], values: Mapping[str, str]) -> str:
    """SQL code (no literal) with parameters replaced, on one line."""
    return re.sub(r"\s+", " ", pattern.sub(lambda m: values[m.group(1)], text))


def parse_function(text: str, name: str, origin: str) -> SqlFunction:
    """Parse one function file. Raises :class:`QueryError` when it is malformed."""
    comments, body = split_header(text)
    signature = _SIGNATURE.match(comments[0]) if comments else None
    if signature is None:
        raise QueryError(f"{origin}: the first line must be '-- function: {name}(parameter, ...)'")
    if signature.group("name") != name:
        raise QueryError(
            f"{origin}: header says function {signature.group('name')!r} but the file is named {name!r}"
        )
    params = tuple(p.strip() for p in signature.group("params").split(",") if p.strip())
    if not all(re.fullmatch(_IDENT, p) for p in params) or len(set(params)) != len(params):
        raise QueryError(f"{origin}: parameters must be distinct names, got {signature.group('params')!r}")
    description = ""
    explanation = []
    for line in comments[1:]:
        match = _DESCRIPTION.match(line)
        if match and not description:
            description = match.group(1).strip()
        else:
            explanation.append(line)
    if not description or not body:
        raise QueryError(f"{origin}: a function needs a '-- description: ...' line and an expression")
    return SqlFunction(name, params, description, "\n".join(explanation).strip(), body, origin)


def package_functions_dir() -> Path:
    """The folder of function files shipped inside the installed package."""
    return package_queries_dir() / "functions"


def load_functions() -> dict[str, SqlFunction]:
    """The SQL functions every engine defines for the queries, by name."""
    folder = package_functions_dir()
    if not folder.is_dir():
        # The shipped queries call these functions: without them every one of them fails.
        raise QueryError(f"the installed flowlens lacks its SQL functions ({str(folder)!r}); reinstall it")
    return {
        path.stem: parse_function(path.read_text(encoding="utf-8"), path.stem, str(path))
        for path in sorted(folder.glob("*.sql"))
    }


def inline_functions(sql: str, functions: Mapping[str, SqlFunction]) -> str:
    """``sql`` with every call of one of ``functions`` replaced by the function's expression.

    Comments and string literals are left alone. Arguments must be columns (``source_type`` or
    ``a.source_type``), as in the shipped queries; anything else is a :class:`QueryError`, never
    a wrong expansion.
    """
    if not functions:
        return sql
    call = re.compile(r"\b(" + "|".join(map(re.escape, functions)) + r")\s*\(([^()]*)\)", re.IGNORECASE)
    by_name = {name.lower(): f for name, f in functions.items()}

    def expand(match: re.Match[str]) -> str:
        arguments = tuple(a.strip() for a in match.group(2).split(","))
        if not all(_ARGUMENT.match(a) for a in arguments):
            raise QueryError(
                f"cannot write {match.group(1)}({match.group(2)}) out: its arguments must be column names"
            )
        return by_name[match.group(1).lower()].expand(arguments)

    left = re.compile(r"\b(" + "|".join(map(re.escape, functions)) + r")\s*\(", re.IGNORECASE)

    def code(text: str) -> str:
        done = call.sub(expand, text)
        rest = left.search(done)
        if rest is not None:
            raise QueryError(f"cannot write {rest.group(1)}(...) out: its arguments must be column names")
        return done

    parts = []
    position = 0
    for noise in SQL_NOISE.finditer(sql):
        parts.append(code(sql[position : noise.start()]))
        parts.append(noise.group(0))
        position = noise.end()
    parts.append(code(sql[position:]))
    return "".join(parts)
