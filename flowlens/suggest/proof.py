"""The proof: replay the window's recorded flows against the suggested policies.

Every recorded *allowed* report (one per reporter side) is evaluated by
:class:`flowlens.policy.evaluate.Evaluator` with the suggestion beside the policies in force (or
in place of them in the target namespaces, ``replace``); a report that becomes denied breaks the
proof. An edge reported by one side only is also checked on the other side when that side is a
pod of a target namespace, because the suggestion writes rules for both sides. Edges left out on
purpose (``--min-connections``) are not checked; they are listed by the synthesis.

A recorded allowed report that the policies in force *alone* already deny in the engine (a
fact the engine lacks: a masked IP under a ``nets`` Deny, an unknown label) is listed as
*unreproducible*, not as broken: the suggestion did not change its verdict.

A pod, host-endpoint or network-set side whose record did not log labels takes the labels that
every other record of the same group (type, ``namespace``, ``name_aggr``) agrees on, as the
synthesis does; the count is reported.

Records whose address Calico masked (aggregation level 2) cannot match an ``ipBlock``/``nets``
rule exactly, and the evaluator then denies strictly. Such a report is re-evaluated with a
representative address of the class Calico logged (``pvt``: an RFC 1918 address, ``pub``: a
documentation address outside RFC 1918) and counted as *representative* rather than exact.

Then the summary of what the suggestion closes: for every pair of known workloads with at least
one side in a target namespace, reachability before (policies in force, and what was observed
denied) and after, on the ports the destination was seen serving (or ``PROBE_PORTS``); beyond
``MAX_PAIRS`` pairs, every observed pair and then a fixed sample of the others; and, per workload,
egress to and ingress from arbitrary private and public addresses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from pathlib import Path

from flowlens.pause import collector_paused
from flowlens.policy.evaluate import Evaluator
from flowlens.policy.inventory import Inventory, load_inventory
from flowlens.policy.manifests import load_policies, policies_from_objects
from flowlens.policy.model import Endpoint, FlowKey, PolicySet
from flowlens.suggest import Suggestion
from flowlens.suggest.edges import Port, edge_of, ports_text
from flowlens.suggest.model import SuggestOptions
from flowlens.suggest.observed import LoggedEndpoint, Report, Workload, intersect_labels
from flowlens.suggest.pairs import pairs_to_check
from flowlens.suggest.screen import Screening, screen
from flowlens.suggest.synth import EdgeInfo, edge_fates
from flowlens.suggest.yamlout import plain

#: Stand-ins for addresses Calico masked, by the class it logged (host endpoints: private;
#: network sets: public).
REPRESENTATIVE = {"pvt": "10.255.255.254", "pub": "192.0.2.10"}
#: Probe addresses for "arbitrary private / public address" reachability.
PROBE_ADDRESSES = {"private": "10.255.255.253", "internet": "192.0.2.11"}
PROBE_PORTS = (("tcp", 80), ("tcp", 443), ("tcp", 8080))
#: At most this many workload pairs are checked for the closure summary (every observed pair first).
MAX_PAIRS = 2000


@dataclass(frozen=True)
class Broken:
    """An observed allowed connection side that the candidate policies deny."""

    reporter: str
    source: str
    dest: str
    proto: str
    port: int | None
    connections: int
    trace: tuple[str, ...]
    notes: tuple[str, ...]
    inferred: bool  # the side was not reported; checked because the suggestion covers it


@dataclass(frozen=True)
class Expected:
    """An observed allowed connection side the candidate denies on purpose: its edge was held
    back or left out (``reason``). Listed as "would be denied", never as broken."""

    reporter: str
    source: str
    dest: str
    proto: str
    port: int | None
    connections: int
    reason: str


def group_expected(items: Sequence[Expected]) -> list[tuple[str, int]]:
    """One line per reason, source and destination with its ports and sides, and its connections;
    the most connections first."""
    groups: dict[tuple[str, str, str], list[Expected]] = defaultdict(list)
    for e in items:
        groups[(e.reason, e.source, e.dest)].append(e)
    lines = []
    for (reason, source, dest), group in groups.items():
        text = ports_text(Port(e.proto, e.port) for e in group)
        sides = "+".join(sorted({"egress" if e.reporter == "src" else "ingress" for e in group}))
        conns = max(
            sum(e.connections for e in group if e.reporter == reporter)
            for reporter in {e.reporter for e in group}
        )
        lines.append((f"{source} -> {dest} {text} ({sides}): {conns} connections ({reason})", conns))
    return sorted(lines, key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class Closed:
    """Something reachable before the suggestion and not after."""

    source: str
    dest: str
    ports: str
    namespaces: tuple[str, ...] = ()  # the namespaces of its workloads


@dataclass(frozen=True)
class ProofResult:
    """The outcome of the replay and the closure summary."""

    replayed: int  # distinct (reporter, endpoints, proto, port) keys evaluated
    connections: int  # connections behind the replayed allowed keys
    broken: tuple[Broken, ...]
    representative: int  # keys decided with a representative address
    labels_filled: int  # pod sides whose labels were not logged, taken from their pod group
    unreproducible: tuple[str, ...]  # recorded allowed, denied by the policies in force alone too
    remediated: int  # denied edges that the candidate now allows
    still_denied: tuple[str, ...]  # denied edges (with --include-denied) still denied
    skipped: int  # reports of edges left out or held back on purpose
    pairs_total: int  # workload pairs with a side in a target namespace
    pairs_checked: int  # at most max_pairs of them: every observed pair, then a fixed sample
    pairs_open_before: int
    pairs_open_after: int
    closed_pairs: tuple[Closed, ...]
    closed_external: tuple[Closed, ...]
    notes: tuple[str, ...]
    expected: tuple[Expected, ...] = ()  # observed allowed, denied on purpose (held back, left out)

    @property
    def newly_denied(self) -> tuple[int, int]:
        """(flow keys, connections) recorded allowed that the candidate denies, on purpose or not."""
        keys = len(self.broken) + len(self.expected)
        return keys, sum(b.connections for b in self.broken) + sum(e.connections for e in self.expected)


def endpoint_of(ep: LoggedEndpoint) -> Endpoint:
    """The policy engine's endpoint for one logged side."""
    name: str | None = ep.name_aggr
    if ep.type == "net" or name in ("-", "pvt", "pub", ""):
        name = None
    return Endpoint(
        kind=ep.type,
        namespace=ep.namespace,
        name=name,
        labels=dict(ep.labels or ()),
        ip=ep.ip,
        labels_known=ep.labels is not None or ep.type == "net",
    )


def fill_labels(reports: Sequence[Report]) -> tuple[list[Report], int]:
    """Reports whose pod, host-endpoint or network-set sides lack logged labels get the labels
    every other record of the same group (type, namespace, name_aggr) agrees on (its
    intersection), as the synthesis does; returns them and how many sides were filled."""
    seen: dict[tuple[str, str | None, str], list[tuple[tuple[str, str], ...] | None]] = defaultdict(list)
    for rep in reports:
        for ep in (rep.source, rep.dest):
            if ep.type in ("wep", "hep", "ns"):
                seen[(ep.type, ep.namespace, ep.name_aggr)].append(ep.labels)
    common = {key: intersect_labels(sets) for key, sets in seen.items()}
    filled = 0
    out = []
    for rep in reports:
        sides = []
        for ep in (rep.source, rep.dest):
            known = common.get((ep.type, ep.namespace, ep.name_aggr))
            if ep.labels is None and known is not None:
                ep = dc_replace(ep, labels=known)
                filled += 1
            sides.append(ep)
        out.append(dc_replace(rep, source=sides[0], dest=sides[1]))
    return out, filled


def _text(ep: LoggedEndpoint) -> str:
    if ep.type == "net":
        return ep.ip or ep.name_aggr
    ns = f"{ep.namespace}/" if ep.namespace else ""
    return f"{ns}{ep.name_aggr}"


def _representative(ep: LoggedEndpoint) -> str | None:
    """A stand-in address for a side whose address was not logged, by what Calico logged."""
    if ep.ip is not None:
        return None
    if ep.type == "net":
        return REPRESENTATIVE.get(ep.name_aggr)
    if ep.type == "hep":
        return REPRESENTATIVE["pvt"]  # node addresses are taken to be private (as the rules are)
    if ep.type == "ns":
        return REPRESENTATIVE["pub"]
    return None


def _masked(ep: LoggedEndpoint) -> bool:
    return _representative(ep) is not None


def _with_ip(ep: LoggedEndpoint) -> LoggedEndpoint:
    ip = _representative(ep)
    return dc_replace(ep, ip=ip) if ip is not None else ep


def _without_targets(policy_set: PolicySet, namespaces: Sequence[str]) -> PolicySet:
    targets = set(namespaces)
    kept = tuple(p for p in policy_set.policies if p.namespace is None or p.namespace not in targets)
    return PolicySet(
        kept, policy_set.tiers, policy_set.network_sets, policy_set.host_endpoints, policy_set.notes
    )


def candidate_policies(
    suggestion: Suggestion | None,
    check_paths: Sequence[Path] | None,
) -> PolicySet:
    if suggestion is not None:
        return policies_from_objects([plain(d.body) for d in suggestion.documents()], "<suggestion>")
    return load_policies(list(check_paths or []))


@collector_paused()
def prove(
    reports: Sequence[Report],
    options: SuggestOptions,
    *,
    suggestion: Suggestion | None = None,
    check_paths: Sequence[Path] | None = None,
    policies: Sequence[Path] = (),
    inventory: Sequence[Path] | Inventory | None = None,
    replace: bool = False,
    max_pairs: int = MAX_PAIRS,
    screening: Screening | None = None,
    closure_namespaces: Sequence[str] | None = None,
) -> ProofResult:
    """Replay ``reports`` against the candidate (``suggestion``, or the manifests in ``check_paths``).

    Reports of edges held back (``screening``: the suggestion's, else screened here with
    ``options.screen``) or left out on purpose are not proof failures: those the candidate denies
    are listed in :attr:`ProofResult.expected` ("would be denied: held back").
    ``closure_namespaces``: the workload pairs counted for the closure summary have a side in
    one of these (default ``options.namespaces``; the rollout counts all its namespaces' pairs at
    every step while enforcing only some of them).
    """
    inv = inventory if isinstance(inventory, Inventory) or inventory is None else None
    if inv is None and inventory and not isinstance(inventory, Inventory):
        inv = load_inventory(list(inventory))
    in_force = load_policies(list(policies)) if policies else PolicySet()
    candidate = candidate_policies(suggestion, check_paths)
    base = _without_targets(in_force, options.namespaces) if replace else in_force
    after_set = base.merged(candidate)
    before = Evaluator(in_force, inv)
    after = Evaluator(after_set, inv)

    reports, labels_filled = fill_labels(reports)
    if screening is None:
        screening = (
            suggestion.plan.screening
            if suggestion is not None and suggestion.plan.screening is not None
            else screen(
                reports,
                options.label_keys,
                options.screen,
                inventory=inv,
                include_denied=options.include_denied,
            )
        )
    keys = edge_fates(reports, options, screening)
    targets = set(options.namespaces)
    broken: list[Broken] = []
    expected: list[Expected] = []
    still_denied: set[str] = set()
    remediated: set[object] = set()
    representative = 0
    unreproducible: list[str] = []
    skipped = 0
    replayed = 0
    connections = 0
    reporters_of: dict[object, set[str]] = defaultdict(set)
    for rep, info in zip(reports, keys, strict=True):
        reporters_of[info.edge].add(rep.reporter)

    # One policy endpoint per logged side: the evaluator's memos then compare keys by identity.
    endpoints: dict[LoggedEndpoint, Endpoint] = {}

    def endpoint(ep: LoggedEndpoint) -> Endpoint:
        got = endpoints.get(ep)
        if got is None:
            got = endpoints[ep] = endpoint_of(ep)
        return got

    seen: set[FlowKey] = set()
    for rep, info in zip(reports, keys, strict=True):
        on_purpose = (
            f"held back: {info.held_back.kind}"
            if info.held_back is not None
            else (f"left out: {info.left_out}" if info.left_out is not None else None)
        )
        if on_purpose is not None:
            skipped += 1
            if rep.action == "allow" and info.verdict == "allow":
                key = FlowKey(
                    rep.reporter, endpoint(rep.source), endpoint(rep.dest), rep.proto, rep.dest_port
                )
                if (
                    key not in seen
                    and before.evaluate(key).action == "allow"
                    and after.evaluate(key).action != "allow"
                ):
                    seen.add(key)
                    expected.append(
                        Expected(
                            rep.reporter,
                            _text(rep.source),
                            _text(rep.dest),
                            rep.proto,
                            rep.dest_port,
                            rep.connections,
                            on_purpose,
                        )
                    )
            continue
        if info.verdict == "deny":
            if not options.include_denied:
                continue
            conn = after.connection(
                endpoint(_with_ip(rep.source)), endpoint(_with_ip(rep.dest)), rep.proto, rep.dest_port
            )
            label = f"{_text(rep.source)} -> {_text(rep.dest)} {rep.proto}/{rep.dest_port}"
            if conn.action == "allow":
                remediated.add(info.edge)
            else:
                still_denied.add(label)
            continue
        if rep.action != "allow":
            continue
        # (every report's connections: reports of one flow key, such as one workload's label
        # sets, each hold some of them)
        connections += rep.connections
        sides = [(rep.reporter, False)]
        other = "dst" if rep.reporter == "src" else "src"
        other_ep = rep.dest if other == "dst" else rep.source
        if other not in reporters_of[info.edge] and other_ep.type == "wep" and other_ep.namespace in targets:
            sides.append((other, True))
        for reporter, inferred in sides:
            key = FlowKey(reporter, endpoint(rep.source), endpoint(rep.dest), rep.proto, rep.dest_port)
            if key in seen:
                continue
            seen.add(key)
            replayed += 1
            decision = after.evaluate(key)
            if decision.action == "allow":
                continue
            if _masked(rep.source) or _masked(rep.dest):
                alt = FlowKey(
                    reporter,
                    endpoint(_with_ip(rep.source)),
                    endpoint(_with_ip(rep.dest)),
                    rep.proto,
                    rep.dest_port,
                )
                if after.evaluate(alt).action == "allow":
                    representative += 1
                    continue
            if before.evaluate(key).action != "allow":
                # The policies in force alone already deny what was recorded allowed: the engine
                # lacks a fact (a masked IP, an unknown label). Not the suggestion's doing.
                unreproducible.append(
                    f"{_text(rep.source)} -> {_text(rep.dest)} {rep.proto}/{rep.dest_port} ({reporter}): "
                    + "; ".join(decision.notes or ("denied by the policies in force too",))
                )
                continue
            broken.append(
                Broken(
                    reporter,
                    _text(rep.source),
                    _text(rep.dest),
                    rep.proto,
                    rep.dest_port,
                    rep.connections,
                    decision.enforced_hits,
                    decision.notes,
                    inferred,
                )
            )

    pairs = _closure(
        reports,
        keys,
        screening,
        before,
        after,
        inv,
        bool(in_force.policies),
        max_pairs,
        closure_namespaces if closure_namespaces is not None else options.namespaces,
    )
    notes = tuple(sorted(set(after_set.notes)))
    return ProofResult(
        replayed=replayed,
        connections=connections,
        broken=tuple(sorted(set(broken), key=lambda b: (b.source, b.dest, b.proto, b.port or 0, b.reporter))),
        representative=representative,
        labels_filled=labels_filled,
        unreproducible=tuple(sorted(set(unreproducible))),
        remediated=len(remediated),
        still_denied=tuple(sorted(still_denied)),
        skipped=skipped,
        pairs_total=pairs[0],
        pairs_checked=pairs[1],
        pairs_open_before=pairs[2],
        pairs_open_after=pairs[3],
        closed_pairs=pairs[4],
        closed_external=pairs[5],
        notes=notes,
        expected=tuple(
            sorted(set(expected), key=lambda x: (x.source, x.dest, x.proto, x.port or 0, x.reporter))
        ),
    )


def _pod_ip(inventory: Inventory | None, w: Workload) -> str | None:
    """An IP of one of the workload's pods, when the inventory knows them (probes only)."""
    if inventory is None:
        return None
    for member in w.members:
        pods = sorted(inventory.find_pods(w.namespace, member), key=lambda p: p.name)
        for pod in pods:
            if pod.ips:
                return pod.ips[0]
    return None


def _closure(
    reports: Sequence[Report],
    keys: Sequence[EdgeInfo],
    screening: Screening,
    before: Evaluator,
    after: Evaluator,
    inventory: Inventory | None,
    before_has_policies: bool,
    max_pairs: int,
    namespaces: Sequence[str],
) -> tuple[int, int, int, int, tuple[Closed, ...], tuple[Closed, ...]]:
    workload_of = screening.workloads
    labels: dict[Workload, list[tuple[tuple[str, str], ...] | None]] = defaultdict(list)
    served: dict[Workload, set[tuple[str, int]]] = defaultdict(set)
    denied_pairs: set[tuple[Workload, Workload]] = set()
    for rep in reports:
        for ep in (rep.source, rep.dest):
            if ep.type == "wep" and ep.namespace is not None:
                labels[workload_of[(ep.namespace, ep.name_aggr)]].append(ep.labels)
        held = screening.held(edge_of(rep, workload_of)) is not None
        if (
            not held
            and rep.dest.type == "wep"
            and rep.dest.namespace is not None
            and rep.dest_port is not None
        ):
            # A port only probed was not served: held-back edges do not widen the closure's probes.
            served[workload_of[(rep.dest.namespace, rep.dest.name_aggr)]].add((rep.proto, rep.dest_port))
        if (
            rep.action == "deny"
            and rep.source.type == "wep"
            and rep.dest.type == "wep"
            and rep.source.namespace is not None
            and rep.dest.namespace is not None
        ):
            denied_pairs.add(
                (
                    workload_of[(rep.source.namespace, rep.source.name_aggr)],
                    workload_of[(rep.dest.namespace, rep.dest.name_aggr)],
                )
            )
    eps = {
        w: Endpoint(
            "wep",
            w.namespace,
            w.members[0] if w.members else None,
            dict(intersect_labels(s) or ()),
            ip=_pod_ip(inventory, w),
        )
        for w, s in labels.items()
    }
    targets = set(namespaces)
    workloads = sorted(eps)
    len_all, candidates = pairs_to_check(
        workloads,
        targets,
        {(k.edge.source, k.edge.dest) for k in keys},
        max_pairs,
    )
    checked = open_before = open_after = 0
    closed: list[Closed] = []
    for a, b in candidates:
        probes = sorted(served.get(b) or PROBE_PORTS)
        checked += 1
        # Without policies in force everything was reachable, except what was seen denied.
        was = (a, b) not in denied_pairs and (
            not before_has_policies
            or any(before.allows(eps[a], eps[b], proto, port) for proto, port in probes)
        )
        now_open = any(after.allows(eps[a], eps[b], proto, port) for proto, port in probes)
        open_before += was
        open_after += now_open
        if was and not now_open:
            closed.append(
                Closed(
                    f"{a.display} ({a.namespace})",
                    f"{b.display} ({b.namespace})",
                    ", ".join(f"{p}/{n}" for p, n in probes),
                    tuple(sorted({a.namespace, b.namespace})),
                )
            )
    external: list[Closed] = []
    for w in workloads:
        if w.namespace not in targets:
            continue
        for what, ip in sorted(PROBE_ADDRESSES.items()):
            outside = Endpoint("net", None, None, {}, ip)
            for proto, port in (("tcp", 443),):
                if before.allows(eps[w], outside, proto, port) and not after.allows(
                    eps[w], outside, proto, port
                ):
                    external.append(
                        Closed(
                            f"{w.display} ({w.namespace})",
                            f"any {what} address (probe {ip})",
                            f"{proto}/{port}",
                            (w.namespace,),
                        )
                    )
                if before.allows(outside, eps[w], proto, port) and not after.allows(
                    outside, eps[w], proto, port
                ):
                    external.append(
                        Closed(
                            f"any {what} address (probe {ip})",
                            f"{w.display} ({w.namespace})",
                            f"{proto}/{port}",
                            (w.namespace,),
                        )
                    )
    return len_all, checked, open_before, open_after, tuple(closed), tuple(external)
