"""Manifest documents: finding and reading manifest files, and validating their fields.

Owns what every API family shares: the files a path names (directories searched recursively for
``*.yaml``/``*.yml``/``*.json``), the documents of a file (multi-document YAML, loaded safely, or
JSON), and the field validators of :class:`Invalid`, the error that carries a field path (the
loader adds the file and document number). Each ``as_*`` validator takes a field's value and its
path and returns the value in the model's terms, or raises :class:`Invalid`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from flowlens.errors import PolicyError, SelectorError
from flowlens.policy.model import IPNetwork
from flowlens.policy.selector import Selector, label_selector_to_calico

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Manifests are untrusted input: bounded in size, nesting and alias expansion before they are
# built into Python objects (PyYAML builds nesting recursively, and aliases expand
# exponentially: a 739-byte alias bomb made a 269 MB error message).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_YAML_DEPTH = 100
# Nodes that aliases may add: ten times the nodes written in the file, and 10,000 more.
ALIAS_EXPANSION = 10
ALIAS_ALLOWANCE = 10_000
MAX_MESSAGE = 400  # characters of a value or message quoted in an error


class Invalid(Exception):
    """A problem at a field path inside one document (turned into a PolicyError with location)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def manifest_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """The manifest files named by ``paths``: files as given, directories searched recursively."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PolicyError(f"{path}: no such file or directory; give a manifest file or a folder of them")
    return files


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (an error message quotes values from untrusted files)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_documents(path: Path) -> list[Any]:
    """Every document of a YAML (multi-document) or JSON file; parse errors name the file and line.
    A file larger than MAX_MANIFEST_BYTES, nested deeper than MAX_YAML_DEPTH or whose aliases
    expand too far (see :func:`check_yaml_bounds`) is refused with a PolicyError."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise PolicyError(
                f"{path}: larger than {MAX_MANIFEST_BYTES:,} bytes; split it into several manifest files"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the file ({bounded(str(exc))})") from None
    if path.suffix.lower() == ".json":
        try:
            return [json.loads(text)] if text.strip() else []
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise PolicyError(f"{path}: JSON nested too deeply to read") from None
    try:
        check_yaml_bounds(text)
        return list(yaml.safe_load_all(text))
    except _TooMuch as exc:
        raise PolicyError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{path}: invalid YAML{where}: {bounded(str(problem))}") from None


class _TooMuch(Exception):
    """YAML past a bound of :func:`check_yaml_bounds`."""


def check_yaml_bounds(text: str) -> None:
    """Raise if the YAML ``text`` nests deeper than MAX_YAML_DEPTH, or if its aliases would add
    more nodes than ALIAS_EXPANSION times the nodes it holds plus ALIAS_ALLOWANCE. Reads the
    event stream (PyYAML's parser is not recursive) and counts each anchor's size once, so
    the check itself costs the size of the text, not of the expansion."""
    sizes: dict[str, int] = {}  # anchor -> nodes, expanded
    open_nodes: list[list[Any]] = []  # [anchor, nodes so far] of each open collection
    written = added = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise _TooMuch(f"YAML nested deeper than {MAX_YAML_DEPTH} levels at line {line}")
            open_nodes.append([event.anchor, 1])
            written += 1
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_nodes.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
            written += 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(event.anchor or "", 1)
            added += size
            if added > ALIAS_EXPANSION * written + ALIAS_ALLOWANCE:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise _TooMuch(
                    f"YAML aliases expand to more than {ALIAS_EXPANSION} times the file's own nodes "
                    f"(at line {line}); write the values out instead of using aliases"
                )
        else:
            continue
        if anchor:
            sizes[anchor] = size
        if open_nodes:
            open_nodes[-1][1] += size


# --------------------------------------------------------------------------------------------
# Field validators


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(path, "expected a mapping")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(path, "expected a list")
    return value


def as_str(value: Any, path: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise Invalid(path, "required")
        return None
    if not isinstance(value, str):
        raise Invalid(path, f"expected a string, got {value!r}")
    return value


def as_metadata(doc: Mapping[str, Any], *, namespaced: bool) -> tuple[str, str | None, Mapping[str, Any]]:
    meta = as_mapping(doc.get("metadata"), "metadata")
    name = as_str(meta.get("name"), "metadata.name", required=True)
    assert name is not None
    namespace = as_str(meta.get("namespace"), "metadata.namespace") if namespaced else None
    if namespaced and namespace is None:
        namespace = "default"  # kubectl/calicoctl apply a namespaced object to 'default'
    labels = as_mapping(meta.get("labels"), "metadata.labels")
    return name, namespace, labels


def as_labels(value: Any, path: str) -> dict[str, str]:
    labels = as_mapping(value, path)
    out: dict[str, str] = {}
    for key, val in labels.items():
        if not isinstance(key, str):
            raise Invalid(f"{path}.{key}", "label keys must be strings")
        out[key] = "" if val is None else str(val)
    return out


def as_label_selector(obj: Any, path: str, *, orchestrator: bool) -> Selector:
    try:
        return label_selector_to_calico(obj, orchestrator=orchestrator, field=path)
    except SelectorError as exc:
        # The selector module already names the field path.
        raise Invalid(path, str(exc).removeprefix(path + ": ")) from None


def as_cidr(value: Any, path: str) -> IPNetwork:
    if not isinstance(value, str):
        raise Invalid(path, f"expected a CIDR string, got {value!r}")
    try:
        # strict=False: Calico and Kubernetes accept host bits and mask them (192.168.1.5/24).
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise Invalid(path, f"{value!r} is not an IP address or CIDR") from None


def as_port_number(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise Invalid(path, f"port {value!r} must be a number from 0 to 65535")
    return value


def as_direction(value: Any, path: str) -> str:
    if isinstance(value, str) and value.lower() in ("ingress", "egress"):
        return value.capitalize()
    raise Invalid(path, f"unknown policy type {value!r}; use Ingress or Egress")
