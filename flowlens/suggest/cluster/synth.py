"""The cluster guardrails a window's traffic supports: the model and its synthesis.

Owns :class:`Guardrail` (one cluster policy: tier, priority, subject, rules), :class:`GuardRule`
(with its evidence) and :func:`synthesise`, which proposes two layers (rulebook G2, G5):

* **Admin** (evaluated before every namespace policy): per namespace, the paths other
  namespaces' pods were seen to use into it are passed on to the namespace's own policies, and
  everything else from another namespace is denied: what the data shows must never happen. DNS
  from many namespaces becomes one path from any namespace. A guard against the cloud metadata
  address is added when no pod was allowed to reach it.
* **Baseline** (evaluated only for pods no namespace policy selects): a shared policy with the
  exceptions every namespace needs (DNS, the cluster-wide clients such as a monitoring scraper,
  the ingress controller), a policy per cluster-wide client for its own egress, and per
  namespace a default deny that keeps the namespace's own traffic and its observed exceptions.

A rule is only ever made from allowed traffic of sources that are not held back as scans or
probes (:func:`flowlens.suggest.cluster.observe.held_back`). A direction whose exceptions cannot
be written (more rules than the API allows) is left to the namespace, with a note.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from flowlens.suggest.cluster.observe import DNS_PORT, Observed, Path, Side, guarded_namespaces
from flowlens.suggest.observed import Labels

#: Calico's masked address classes, as the networks that hold them (private: RFC 1918).
PRIVATE_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
ANY_NETS = ("0.0.0.0/0", "::/0")
METADATA_NET = "169.254.169.254/32"
#: Rules per direction a ClusterNetworkPolicy may hold.
MAX_RULES = 25
PREFIX = "flowlens"


@dataclass(frozen=True)
class Peer:
    """Who a rule names: ``pods`` (a workload), ``namespace`` (every pod of one namespace),
    ``any-namespace`` (every pod) or ``networks``."""

    kind: str
    namespace: str = ""
    selector: Labels = ()
    nets: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        if self.kind == "pods":
            sel = ",".join(f"{k}={v}" for k, v in self.selector) or "all pods"
            return f"{self.namespace}/{sel}"
        if self.kind == "namespace":
            return f"namespace {self.namespace}"
        if self.kind == "any-namespace":
            return "any namespace"
        return ", ".join(self.nets)


Ports = tuple[tuple[str, int | None], ...]  # (protocol, port); port None = every port of it


@dataclass(frozen=True)
class GuardRule:
    """One rule: ``Accept``, ``Deny`` or ``Pass`` for the peers on the ports (none: all)."""

    name: str
    action: str
    peers: tuple[Peer, ...]
    ports: Ports = ()
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """The pods a guardrail applies to: the pods of ``namespaces`` (empty: of every namespace),
    or the pods of one workload (``pods``)."""

    namespaces: tuple[str, ...] = ()
    pods: Peer | None = None

    @property
    def display(self) -> str:
        if self.pods is not None:
            return self.pods.display
        return ", ".join(self.namespaces) or "every namespace"


@dataclass(frozen=True)
class Guardrail:
    """One cluster policy of the suggestion."""

    name: str
    tier: str  # Admin | Baseline
    priority: int
    subject: Subject
    ingress: tuple[GuardRule, ...] = ()
    egress: tuple[GuardRule, ...] = ()
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterPlan:
    """The suggested guardrails, what was left to the namespaces and why, and the sources held
    back as scans or probes."""

    guardrails: tuple[Guardrail, ...]
    left_out: tuple[str, ...]
    held_back: tuple[str, ...]
    notes: tuple[str, ...]

    def without(self, name: str, direction: str | None, reason: str) -> ClusterPlan:
        """This plan with guardrail ``name`` (or only its ``direction``) removed, saying why."""
        kept = []
        for g in self.guardrails:
            if g.name != name:
                kept.append(g)
            elif direction == "ingress" and g.egress:
                kept.append(dataclasses.replace(g, ingress=()))
            elif direction == "egress" and g.ingress:
                kept.append(dataclasses.replace(g, egress=()))
        what = f"{name} ({direction})" if direction else name
        return dataclasses.replace(
            self, guardrails=tuple(kept), left_out=(*self.left_out, f"{what}: {reason}")
        )


# --------------------------------------------------------------------------------------------
# Evidence


def _when(paths: Sequence[Path]) -> str:
    first = min(p.first_seen for p in paths if p.first_seen)
    last = max(p.last_seen for p in paths if p.last_seen)
    return f"{first:%Y-%m-%dT%H:%MZ} .. {last:%Y-%m-%dT%H:%MZ}"


def evidence(paths: Sequence[Path], what: str) -> tuple[str, ...]:
    """Comment lines: how much traffic, when, and a few of the paths behind a rule."""
    connections = sum(p.allowed for p in paths)
    lines = [f"evidence: {what}: {connections:,} allowed connections, {_when(paths)}"]
    shown = sorted(paths, key=lambda p: (-p.allowed, p.source, p.dest, p.proto, p.port or 0))[:3]
    lines += [
        f"  {p.source.display} -> {p.dest.display} {p.proto}/{p.port or '*'}: {p.allowed:,}" for p in shown
    ]
    if len(paths) > 3:
        lines.append(f"  ... and {len(paths) - 3} more paths")
    return tuple(lines)


def _ports(paths: Sequence[Path]) -> Ports:
    return tuple(
        sorted({(p.proto, p.port) for p in paths}, key=lambda x: (x[0], -1 if x[1] is None else x[1]))
    )


def _pods(side: Side) -> Peer:
    return Peer("pods", side.namespace, side.selector)


def _from_sources(paths: Sequence[Path], action: str, ns: str) -> list[GuardRule]:
    """One rule per source pod group of ``paths`` into namespace ``ns``, with its ports and evidence."""
    by_source: dict[Side, list[Path]] = defaultdict(list)
    for p in paths:
        by_source[p.source].append(p)
    return [
        GuardRule(
            f"from-{_slug(source.display)}",
            action,
            (_pods(source),),
            _ports(group),
            evidence(group, f"{source.display} into {ns}"),
        )
        for source, group in sorted(by_source.items())
    ]


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:50] or "all"


def _destination_peer(side: Side, host_nets: dict[str, tuple[str, ...]]) -> Peer | None:
    """The peer an egress exception names for a destination outside the namespace."""
    if side.kind == "pods":
        return _pods(side)
    if side.kind == "net":
        if side.ip:
            return Peer("networks", nets=(f"{side.ip}/{128 if ':' in side.ip else 32}",))
        # Calico masked the address: the rule has to name the class it logged.
        return Peer("networks", nets=PRIVATE_NETS if side.name == "pvt" else ANY_NETS)
    nets = host_nets.get(side.name) or ((f"{side.ip}/32",) if side.ip else PRIVATE_NETS)
    return Peer("networks", nets=nets)


# --------------------------------------------------------------------------------------------
# Synthesis


def synthesise(
    observed: Observed, *, include_system: bool = False, host_nets: dict[str, tuple[str, ...]] | None = None
) -> ClusterPlan:
    """The Admin and Baseline layers ``observed`` supports (see the module docstring)."""
    host_nets = host_nets or {}
    left_out: list[str] = []
    guardrails = [*_admin(observed), *_baseline(observed, include_system, host_nets, left_out)]
    held = tuple(why for _, why in sorted(observed.held.items(), key=lambda kv: kv[1]))
    notes = (
        "ClusterNetworkPolicy ingress rules name pods only: traffic from outside the cluster into a pod "
        "is neither passed nor denied by these guardrails",
    )
    return ClusterPlan(tuple(guardrails), tuple(left_out), held, notes)


def _admin(observed: Observed) -> list[Guardrail]:
    """Per namespace: pass the observed paths from other namespaces, deny the rest (Admin)."""
    allowed = observed.allowed()
    out: list[Guardrail] = []
    for index, ns in enumerate(observed.namespaces):
        inbound = [p for p in allowed if p.cross_namespace and p.dest.namespace == ns]
        rules = [
            GuardRule(
                "same-namespace",
                "Pass",
                (Peer("namespace", ns),),
                (),
                ("its own pods: left to its policies",),
            )
        ]
        dns = [p for p in inbound if observed.is_dns(p)]
        rest = [p for p in inbound if not observed.is_dns(p)]
        if dns:
            # DNS is asked from every namespace: one path from any namespace, to the servers only.
            for server in sorted({p.dest for p in dns}):
                mine = [p for p in dns if p.dest == server]
                what = f"DNS from {len({p.source.namespace for p in mine})} namespaces"
                rules.append(
                    GuardRule(
                        f"dns-to-{_slug(server.name)}",
                        "Pass",
                        (Peer("any-namespace"),),
                        _ports(mine),
                        evidence(mine, what),
                    )
                )
        rules += _from_sources(rest, "Pass", ns)
        rules.append(
            GuardRule(
                "other-namespaces",
                "Deny",
                (Peer("any-namespace"),),
                (),
                ("no other path from another namespace was seen in the window: it must not happen",),
            )
        )
        if len(rules) > MAX_RULES:
            continue  # more paths than one policy holds: not a closed namespace
        out.append(
            Guardrail(
                f"{PREFIX}-admin-{ns}",
                "Admin",
                100 + index,
                Subject((ns,)),
                ingress=tuple(rules),
                comments=(f"namespace {ns}: {len(rules) - 2} named path(s) in from other namespaces",),
            )
        )
    metadata = _metadata(observed)
    return ([metadata] if metadata else []) + out


def _metadata(observed: Observed) -> Guardrail | None:
    """Deny the cloud metadata address to every namespace no pod of which was allowed to reach it."""
    reached = {
        p.source.namespace
        for p in observed.paths
        if p.allowed and p.dest.kind == "net" and p.dest.ip == METADATA_NET[:-3] and p.source.kind == "pods"
    }
    tried = [
        p for p in observed.paths if p.denied and p.dest.kind == "net" and p.dest.ip == METADATA_NET[:-3]
    ]
    subject = tuple(n for n in observed.namespaces if n not in reached)
    if not subject:
        return None
    lines = [
        "evidence: no pod of these namespaces was allowed to reach the cloud metadata address in the window"
    ]
    lines += [
        f"  denied attempts: {p.source.display} -> {p.dest.display} {p.proto}/{p.port}: {p.denied:,}"
        for p in tried[:3]
    ]
    rule = GuardRule("cloud-metadata", "Deny", (Peer("networks", nets=(METADATA_NET,)),), (), tuple(lines))
    return Guardrail(f"{PREFIX}-admin-cloud-metadata", "Admin", 10, Subject(subject), egress=(rule,))


def _baseline(
    observed: Observed, include_system: bool, host_nets: dict[str, tuple[str, ...]], left_out: list[str]
) -> list[Guardrail]:
    scope = guarded_namespaces(observed, include_system)
    if not scope:
        return []
    allowed = observed.allowed()
    clients = dict(observed.clients)
    out: list[Guardrail] = []
    shared_in: list[GuardRule] = []
    shared_out: list[GuardRule] = []
    for client, role in sorted(clients.items()):
        paths = [p for p in allowed if p.source == client and p.cross_namespace and not observed.is_dns(p)]
        into = sorted({p.dest.namespace for p in paths})
        shared_in.append(
            GuardRule(
                f"from-{_slug(client.display)}",
                "Accept",
                (_pods(client),),
                _ports(paths),
                evidence(paths, f"{role} {client.display} into {', '.join(into)}"),
            )
        )
    for server in observed.dns_servers:
        paths = [p for p in allowed if p.dest == server and p.port == DNS_PORT]
        shared_out.append(
            GuardRule(
                f"dns-to-{_slug(server.name)}",
                "Accept",
                (_pods(server),),
                _ports(paths),
                evidence(paths, "DNS"),
            )
        )
    if shared_in or shared_out:
        out.append(
            Guardrail(
                f"{PREFIX}-baseline-shared",
                "Baseline",
                10,
                Subject(scope),
                ingress=tuple(shared_in),
                egress=tuple(shared_out),
                comments=(
                    "the exceptions every namespace needs: DNS, and the cluster-wide clients and ingress controllers",
                ),
            )
        )
    for index, (client, role) in enumerate(sorted(clients.items())):
        if client.namespace not in scope:
            continue
        paths = [p for p in allowed if p.source == client and p.cross_namespace and not observed.is_dns(p)]
        rule = GuardRule(
            "to-any-namespace",
            "Accept",
            (Peer("any-namespace"),),
            _ports(paths),
            evidence(paths, f"{role} {client.display}"),
        )
        out.append(
            Guardrail(
                f"{PREFIX}-baseline-client-{_slug(client.display)}",
                "Baseline",
                20 + index,
                Subject(pods=_pods(client)),
                egress=(rule,),
            )
        )
    for index, ns in enumerate(scope):
        ingress = _namespace_ingress(ns, allowed, clients, observed, left_out)
        egress = _namespace_egress(ns, allowed, clients, observed, host_nets, left_out)
        if ingress or egress:
            out.append(
                Guardrail(
                    f"{PREFIX}-baseline-{ns}",
                    "Baseline",
                    100 + index,
                    Subject((ns,)),
                    ingress=ingress,
                    egress=egress,
                    comments=(
                        f"namespace {ns}: default deny for pods no NetworkPolicy selects, its own traffic and the observed exceptions kept",
                    ),
                )
            )
    return out


def _namespace_ingress(
    ns: str, allowed: Sequence[Path], clients: dict[Side, str], observed: Observed, left_out: list[str]
) -> tuple[GuardRule, ...]:
    rules = [GuardRule("same-namespace", "Accept", (Peer("namespace", ns),))]
    rules += _from_sources(
        [
            p
            for p in allowed
            if p.cross_namespace
            and p.dest.namespace == ns
            and p.source not in clients
            and not observed.is_dns(p)
        ],
        "Accept",
        ns,
    )
    rules.append(GuardRule("default-deny", "Deny", (Peer("any-namespace"),)))
    if len(rules) > MAX_RULES:
        left_out.append(
            f"{PREFIX}-baseline-{ns} (ingress): {len(rules)} rules, more than a ClusterNetworkPolicy holds"
        )
        return ()
    return tuple(rules)


def _namespace_egress(
    ns: str,
    allowed: Sequence[Path],
    clients: dict[Side, str],
    observed: Observed,
    host_nets: dict[str, tuple[str, ...]],
    left_out: list[str],
) -> tuple[GuardRule, ...]:
    rules = [GuardRule("same-namespace", "Accept", (Peer("namespace", ns),))]
    by_peer: dict[Peer, list[Path]] = defaultdict(list)
    for p in allowed:
        if p.source.kind != "pods" or p.source.namespace != ns or observed.is_dns(p):
            continue
        if p.dest.kind == "pods" and (p.dest.namespace == ns or p.source in clients):
            continue  # its own namespace, or a client's egress into pods (the client's policy)
        peer = _destination_peer(p.dest, host_nets)
        if peer is not None:
            by_peer[peer].append(p)
    for peer, paths in sorted(
        by_peer.items(), key=lambda kv: (kv[0].kind, kv[0].namespace, kv[0].selector, kv[0].nets)
    ):
        what = f"{ns} to {', '.join(sorted({p.dest.display for p in paths}))}"
        lines = evidence(paths, what)
        if peer.nets in (PRIVATE_NETS, ANY_NETS):
            lines = (
                *lines,
                "  Calico logged no address (masked): the rule names every address of that class on these ports",
            )
        rules.append(GuardRule(f"to-{_slug(peer.display)}", "Accept", (peer,), _ports(paths), lines))
    rules.append(GuardRule("default-deny", "Deny", (Peer("networks", nets=ANY_NETS),)))
    if len(rules) > MAX_RULES:
        left_out.append(
            f"{PREFIX}-baseline-{ns} (egress): {len(rules)} rules, more than a ClusterNetworkPolicy holds"
        )
        return ()
    return tuple(rules)
