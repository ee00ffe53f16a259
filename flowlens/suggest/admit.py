"""``--admit EDGE``: the syntax that names held-back edges to keep on purpose.

``EDGE`` is ``SOURCE->DEST[@PORTS]`` (:data:`ADMIT_SYNTAX`). :func:`parse_admit` checks it and
returns an :class:`AdmitPattern` that matches :class:`~.edges.Edge` values; :func:`side_token`
spells a side the same way, so that the held-back list can print the ``EDGE`` of every group.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from flowlens.errors import UsageError
from flowlens.suggest.edges import Edge, External, Side
from flowlens.suggest.observed import Labels, Workload

ADMIT_SYNTAX = (
    "EDGE is SOURCE->DEST[@PORTS]: a side is NAMESPACE/KEY=VALUE[,KEY=VALUE] (a workload by its "
    "selector), NAMESPACE/* (any workload there), an IP address or CIDR, pub or pvt (addresses "
    "that were not logged), host:NAME, netset:[NAMESPACE/]NAME, or * (anything); PORTS is a "
    "comma-separated list of PROTO/PORT, PROTO/FIRST-LAST or PROTO (e.g. tcp/8080,udp/53); "
    "the held-back list prints the EDGE of each group"
)
_LABEL = re.compile(
    r"^(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_PORTS = re.compile(r"^(?P<proto>[a-z][a-z0-9]*)(?:/(?P<first>\d{1,5})(?:-(?P<last>\d{1,5}))?)?$")


@dataclass(frozen=True)
class SidePattern:
    """One side of an ``--admit`` pattern."""

    kind: str  # any | workload | net | class | host | netset
    namespace: str | None = None
    selector: Labels | None = None  # workload: None = any workload of the namespace
    network: str | None = None  # net: a CIDR
    name: str | None = None  # class: pub/pvt; host and netset: the name

    def matches(self, side: Side) -> bool:
        if self.kind == "any":
            return True
        if self.kind == "workload":
            return (
                isinstance(side, Workload)
                and side.namespace == self.namespace
                and (self.selector is None or dict(side.selector) == dict(self.selector))
            )
        if not isinstance(side, External):
            return False
        if self.kind == "net":
            if side.ip is None or self.network is None:
                return False
            try:
                return ipaddress.ip_address(side.ip) in ipaddress.ip_network(self.network)
            except ValueError:
                return False
        if self.kind == "class":
            return side.type == "net" and side.name_aggr == self.name
        if self.kind == "host":
            return side.type == "hep" and side.name_aggr == self.name
        return side.type == "ns" and side.name_aggr == self.name and side.namespace == self.namespace


@dataclass(frozen=True)
class AdmitPattern:
    """A parsed ``--admit EDGE``: the held-back edges it keeps."""

    text: str
    source: SidePattern
    dest: SidePattern
    ports: tuple[tuple[str, int | None, int | None], ...]  # empty: every port

    def matches(self, edge: Edge) -> bool:
        if not (self.source.matches(edge.source) and self.dest.matches(edge.dest)):
            return False
        if not self.ports:
            return True
        for proto, first, last in self.ports:
            if proto != edge.port.proto:
                continue
            if first is None:
                return True
            if edge.port.port is not None and first <= edge.port.port <= (last or first):
                return True
        return False


def side_token(side: Side) -> str:
    """The ``--admit`` spelling of a side."""
    if isinstance(side, Workload):
        if not side.selector:
            return f"{side.namespace}/*"
        return f"{side.namespace}/" + ",".join(f"{k}={v}" for k, v in side.selector)
    if side.type == "hep":
        return f"host:{side.name_aggr}"
    if side.type == "ns":
        return f"netset:{side.namespace}/{side.name_aggr}" if side.namespace else f"netset:{side.name_aggr}"
    if side.ip:
        return side.ip
    return side.name_aggr if side.name_aggr in ("pub", "pvt") else "*"


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"--admit {text!r}: {why}. {ADMIT_SYNTAX}")


def _side_pattern(part: str, text: str) -> SidePattern:
    if part == "*":
        return SidePattern("any")
    if part in ("pub", "pvt"):
        return SidePattern("class", name=part)
    for prefix, kind in (("host:", "host"), ("netset:", "netset")):
        if part.startswith(prefix):
            rest = part[len(prefix) :]
            ns, _, name = rest.rpartition("/")
            if not _NAME.match(name) or (ns and not _NAME.match(ns)) or (ns and kind == "host"):
                raise _bad(text, f"{part!r} is not a valid {kind} name")
            return SidePattern(kind, namespace=ns or None, name=name)
    try:
        return SidePattern("net", network=str(ipaddress.ip_network(part, strict=False)))
    except ValueError:
        pass
    ns, slash, labels = part.partition("/")
    if not slash or not _NAME.match(ns) or len(ns) > 63:
        raise _bad(
            text, f"{part!r} is neither NAMESPACE/SELECTOR, an address, pub, pvt, host:, netset: nor *"
        )
    if labels == "*":
        return SidePattern("workload", namespace=ns)
    pairs = []
    for item in labels.split(","):
        key, eq, value = item.partition("=")
        if not eq or not _LABEL.match(key) or not _VALUE.match(value) or len(value) > 63:
            raise _bad(text, f"{item!r} is not a KEY=VALUE label")
        pairs.append((key, value))
    return SidePattern("workload", namespace=ns, selector=tuple(sorted(pairs)))


def parse_admit(text: str) -> AdmitPattern:
    """Parse ``--admit EDGE`` (:data:`ADMIT_SYNTAX`); :class:`UsageError` saying what is wrong."""
    raw = text.strip()
    if raw.count("->") != 1:
        raise _bad(text, "give exactly one '->' between the source and the destination")
    source, rest = raw.split("->")
    dest, at, ports_text = rest.partition("@")
    ports: list[tuple[str, int | None, int | None]] = []
    if at:
        for item in ports_text.split(","):
            m = _PORTS.match(item.strip().lower())
            if m is None:
                raise _bad(text, f"{item!r} is not PROTO, PROTO/PORT or PROTO/FIRST-LAST")
            first = int(m["first"]) if m["first"] else None
            last = int(m["last"]) if m["last"] else first
            if first is not None and last is not None and not 1 <= first <= last <= 65535:
                raise _bad(text, f"{item!r}: ports are 1-65535, the first no larger than the last")
            ports.append((m["proto"], first, last))
    return AdmitPattern(
        raw, _side_pattern(source.strip(), text), _side_pattern(dest.strip(), text), tuple(ports)
    )
