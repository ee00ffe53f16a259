"""Policy evaluation: the verdict and the Calico trace for one flow, the way Felix computes them.

Owns :class:`Evaluator`. For a :class:`~flowlens.policy.model.FlowKey` it evaluates the egress side
at the source (reporter ``src``) or the ingress side at the destination (reporter ``dst``);
:meth:`Evaluator.connection` evaluates both sides (V1: a connection is allowed iff both are).

The model is Calico's (reference §4; rulebook C1-C11), with Kubernetes NetworkPolicies converted
into Calico policies in the ``default`` tier at order 1000 (C7) by ``manifests``:

* tiers in ascending order (none = last, ties by name); a tier applies to (endpoint, direction)
  only if one of its policies selects the endpoint and has that direction in its types;
* policies by order (none = +inf), ties by name; rules in order; Allow/Deny final, Log goes on,
  Pass leaves the tier; a policy whose rules do not match gives no verdict;
* at the end of an applicable tier its default action applies (Deny, or Pass), blamed on the last
  applicable non-staged policy of the tier (rule index -1);
* after the tiers, the profiles: ``kns.<namespace>`` allows for pods; a host endpoint without an
  allowing profile is denied (Calico's host-endpoint default deny; failsafe ports not modelled).

Selectors are evaluated exactly as Felix's IP sets see endpoints: every workload carries its pod
labels plus ``projectcalico.org/namespace``, ``projectcalico.org/orchestrator=k8s``,
``projectcalico.org/serviceaccount``, its namespace labels as ``pcns.<key>`` (with
``pcns.projectcalico.org/name``) and its service account's labels as ``pcsa.<key>`` (with
``pcsa.projectcalico.org/name``); rule namespaceSelectors become ``pcns.``-prefixed selectors
(``all()`` = any namespaced endpoint, ``global()`` = non-namespaced ones).

Undecidable rules: without an inventory some facts are unknown (the labels of a namespace beyond
``kubernetes.io/metadata.name`` and ``projectcalico.org/name``, a pod's service account and its
labels, named ports, a masked IP). A selector or field that depends on an unknown fact is
*undecided*; flowlens then takes the stricter outcome and says so in ``Decision.notes``: an
undecided policy selector selects the endpoint, an undecided Deny rule matches, and an undecided
Allow, Pass or Log rule does not match. When the other way round would give a different result,
``Decision.alternative_*`` holds it (replay keeps a recorded verdict that is one of the two).
Masked IPs are narrowed where possible: a host endpoint's ``expectedIPs``, the inventory's pod
IPs, and Calico's ``pvt``/``pub`` class against CIDRs that cannot hold such an address.

Staged policies only shape the pending trace (staged treated as enforced; ``stagedAction: Delete``
removes its enforced counterpart there; ``Ignore`` is never evaluated). Traces are tuples of
:class:`flowlens.formats.hits.PolicyHit`, whose ``.hit`` is Calico's modern string form.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from flowlens.errors import PolicyError
from flowlens.formats.hits import PolicyHit
from flowlens.policy.inventory import NAMESPACE_NAME_LABEL, Inventory
from flowlens.policy.model import (
    BUILTIN_TIERS,
    ContainerPort,
    Endpoint,
    EntityRule,
    FlowKey,
    HostEndpoint,
    IPAddress,
    IPNetwork,
    NamedPort,
    NetworkSet,
    Policy,
    PolicySet,
    Port,
    PortRange,
    Rule,
    Tier,
    normalize_protocol,
    profile_hit,
    protocol_name,
)
from flowlens.policy.selector import (
    NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX,
    ORCHESTRATOR_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
    Eq,
    In,
    Selector,
    and_,
    to_namespace_scope,
)

SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
NAME_LABEL = "projectcalico.org/name"
DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow"

INGRESS = "Ingress"
EGRESS = "Egress"


@dataclass(frozen=True)
class Decision:
    """The verdict of one side (egress at the source or ingress at the destination).

    ``enforced`` is the trace of the policies in force (staged ones left out, re-numbered);
    ``pending`` the trace with staged policies treated as enforced, up to its first verdict, and
    ``pending_action`` its verdict. ``notes`` say what could not be decided and how it was decided.
    ``evaluated`` is False when the side is not a Calico endpoint (nothing is evaluated there).
    When a missing fact changes the outcome, ``action``/``enforced`` are the stricter outcome and
    ``alternative_action``/``alternative_enforced``/``alternative_pending`` the other one
    (undecided Deny rules not matching, undecided Allow/Pass/Log rules matching, undecided policy
    selectors not selecting).
    """

    action: str
    enforced: tuple[PolicyHit, ...] = ()
    pending: tuple[PolicyHit, ...] = ()
    notes: tuple[str, ...] = ()
    pending_action: str = ""
    evaluated: bool = True
    alternative_action: str | None = None
    alternative_enforced: tuple[PolicyHit, ...] = ()
    alternative_pending: tuple[PolicyHit, ...] = ()

    @property
    def undecided(self) -> bool:
        """True when missing facts leave two outcomes: ``action`` (the stricter) and
        ``alternative_action`` (what the undecided rules would give if they went the other way)."""
        return self.alternative_action is not None

    @property
    def enforced_hits(self) -> tuple[str, ...]:
        return tuple(h.hit for h in self.enforced)

    @property
    def pending_hits(self) -> tuple[str, ...]:
        return tuple(h.hit for h in self.pending)


@dataclass(frozen=True)
class Connection:
    """Both sides of one connection. ``action`` is allow iff both evaluated sides allow (V1)."""

    action: str
    egress: Decision
    ingress: Decision
    pending_action: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """A connection plus the tier-by-tier walk of each side, in plain sentences."""

    connection: Connection
    egress_steps: tuple[str, ...]
    ingress_steps: tuple[str, ...]
    source: Endpoint
    dest: Endpoint
    proto: str
    port: int | None


# --------------------------------------------------------------------------------------------
# Internal, resolved views of endpoints


@dataclass(frozen=True)
class _View:
    """The labels Felix's selectors see for one endpoint, and which keys are unknown."""

    labels: dict[str, str]
    unknown_prefixes: tuple[str, ...] = ()
    unknown_why: tuple[str, ...] = ()  # one description per prefix

    def undecided(self, keys: frozenset[str]) -> str | None:
        """A description of the missing fact when the selector's keys touch an unknown key."""
        if not self.unknown_prefixes:
            return None
        for key in sorted(keys):
            if key in self.labels:
                continue  # present keys are known, whatever else is missing
            best: tuple[int, str] | None = None
            for prefix, why in zip(self.unknown_prefixes, self.unknown_why, strict=True):
                if key.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), why)
            if best is not None:
                return best[1]
        return None


@dataclass(frozen=True)
class _Ident:
    """An endpoint or network set as a selector target."""

    kind: str  # wep | hep | ns
    namespace: str | None
    name: str | None
    view: _View
    display: str


@dataclass(frozen=True)
class _Local:
    """The endpoint whose policies are evaluated."""

    ident: _Ident
    named_ports: tuple[ContainerPort, ...] | None
    profiles: tuple[str, ...] | None  # None = unknown (host endpoint without manifest)


@dataclass(frozen=True)
class _Side:
    """One side of a packet as rules see it."""

    ips: tuple[IPAddress, ...] | None  # the possible addresses; None = unknown
    ip_class: str | None  # 'pvt' / 'pub' for a masked address outside the cluster
    idents: tuple[_Ident, ...]
    complete: bool  # False: the side may be an endpoint we cannot see (masked IP)
    named_ports: tuple[ContainerPort, ...] | None
    display: str


@dataclass(frozen=True)
class _CEntity:
    source: EntityRule
    positive: Selector | None
    negative: Selector | None
    scope: str | None  # the policy namespace the selector is limited to, for messages
    empty: bool  # no criteria: matches any peer


@dataclass(frozen=True)
class _CRule:
    rule: Rule
    src: _CEntity
    dst: _CEntity


@dataclass(frozen=True)
class _CPolicy:
    policy: Policy
    selector: Selector
    ingress: tuple[_CRule, ...]
    egress: tuple[_CRule, ...]

    def rules(self, direction: str) -> tuple[_CRule, ...]:
        return self.ingress if direction == INGRESS else self.egress


_Plan = tuple[tuple[Tier, tuple[_CPolicy, ...]], ...]


@dataclass
class _Ctx:
    notes: set[str] = field(default_factory=set)
    log: list[str] | None = None
    lenient: bool = False  # undecided facts go the permissive way (the alternative outcome)
    undecided: bool = False  # set when any fact could not be decided

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log.append(text)


_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _in_nets(ip: IPAddress, nets: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _may_hold(net: IPNetwork, ip_class: str) -> bool:
    """Whether a CIDR can contain an address Calico classifies as ``pvt`` or ``pub``."""
    if net.version != 4:
        return ip_class == "pub"
    if ip_class == "pvt":
        return any(net.overlaps(r) for r in _PRIVATE)
    return not any(net.subnet_of(r) for r in _PRIVATE)  # type: ignore[arg-type]


def _nets_match(nets: tuple[IPNetwork, ...], side: _Side) -> bool | None:
    """True/False when every possible address of the side is / is not in ``nets``, else None."""
    if side.ips is not None:
        hits = [_in_nets(ip, nets) for ip in side.ips]
        if all(hits):
            return True
        if not any(hits):
            return False
        return None
    if side.ip_class is not None:
        if not any(_may_hold(n, side.ip_class) for n in nets):
            return False
        if side.ip_class == "pvt" and all(
            any(n.version == 4 and r.subnet_of(n) for n in nets)  # type: ignore[arg-type]
            for r in _PRIVATE
        ):
            return True
    return None


def _ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Compilation


def _compile_entity(er: EntityRule, policy: Policy) -> _CEntity:
    # rules.go getEndpointSelector: the namespace clause only when a selector-ish field is set.
    parts: list[Selector] = []
    if er.selector is not None:
        parts.append(er.selector)
    if er.has_selector_fields:
        if er.namespace_selector is not None:
            parts.append(to_namespace_scope(er.namespace_selector))
        elif policy.namespace is not None:
            parts.append(Eq(NAMESPACE_LABEL, policy.namespace))
    if er.service_accounts is not None:
        if er.service_accounts.names:
            parts.append(In(SERVICE_ACCOUNT_LABEL, tuple(er.service_accounts.names)))
        if er.service_accounts.selector is not None:
            parts.append(er.service_accounts.selector.prefixed(SERVICE_ACCOUNT_LABEL_PREFIX))
    positive = and_(*parts) if parts else None
    scope = policy.namespace if er.has_selector_fields and er.namespace_selector is None else None
    return _CEntity(er, positive, er.not_selector, scope, er.is_empty)


def _describe_selection(er: EntityRule, scope: str | None) -> str:
    """The selector fields of an entity rule in words (the compiled form uses Calico's internal
    ``pcns.``/``pcsa.`` labels)."""
    parts = []
    if er.selector is not None:
        parts.append(f"selector {er.selector}")
    if er.namespace_selector is not None:
        parts.append(f"namespaceSelector {er.namespace_selector}")
    elif scope is not None:
        parts.append(f"namespace {scope}")
    if er.service_accounts is not None:
        if er.service_accounts.names:
            parts.append(f"service account in {{{', '.join(er.service_accounts.names)}}}")
        if er.service_accounts.selector is not None:
            parts.append(f"service-account selector {er.service_accounts.selector}")
    return " and ".join(parts) or "all()"


def _compile_policy(policy: Policy) -> _CPolicy:
    parts: list[Selector] = [policy.selector]
    if policy.namespace is not None:
        parts.append(Eq(NAMESPACE_LABEL, policy.namespace))
    elif policy.namespace_selector is not None:
        parts.append(to_namespace_scope(policy.namespace_selector))
    if policy.service_account_selector is not None:
        parts.append(policy.service_account_selector.prefixed(SERVICE_ACCOUNT_LABEL_PREFIX))

    def rules(items: tuple[Rule, ...]) -> tuple[_CRule, ...]:
        return tuple(
            _CRule(r, _compile_entity(r.source, policy), _compile_entity(r.destination, policy))
            for r in items
        )

    return _CPolicy(policy, and_(*parts), rules(policy.ingress), rules(policy.egress))


def _plan(policies: Iterable[Policy], tiers: dict[str, Tier]) -> _Plan:
    by_tier: dict[str, list[Policy]] = {}
    for p in policies:
        if p.do_not_track or p.pre_dnat:
            continue
        by_tier.setdefault(p.tier, []).append(p)
    plan = []
    for name, pols in by_tier.items():
        tier = tiers.get(name) or Tier(name, None, "Deny")
        plan.append((tier, tuple(_compile_policy(p) for p in sorted(pols, key=lambda p: p.sort_key))))
    plan.sort(key=lambda entry: entry[0].sort_key)
    return tuple(plan)


# --------------------------------------------------------------------------------------------
# The evaluator


class Evaluator:
    """Evaluates flows against one policy set (and, optionally, a cluster inventory).

    Results are memoized per :class:`FlowKey`, and endpoint resolution per :class:`Endpoint`, so
    replaying millions of records costs one evaluation per distinct key.
    """

    def __init__(self, policy_set: PolicySet, inventory: Inventory | None = None) -> None:
        self.policy_set = policy_set
        self.inventory = inventory
        tiers = {t.name: t for t in BUILTIN_TIERS}
        tiers.update({t.name: t for t in policy_set.tiers})
        self._tiers = tiers
        enforced = [p for p in policy_set.policies if not p.staged]
        deleted = {p.counterpart_key for p in policy_set.policies if p.staged and p.staged_action == "Delete"}
        pending = [p for p in enforced if p.key not in deleted] + [
            p for p in policy_set.policies if p.staged and p.staged_action in ("Set", "Learn")
        ]
        self._enforced_plan = _plan(enforced, tiers)
        self._pending_plan = _plan(pending, tiers)
        self._has_staged = any(p.staged for p in policy_set.policies)
        self._network_sets = policy_set.network_sets
        self._heps_by_name = {h.name: h for h in policy_set.host_endpoints}
        self._heps_by_ip: dict[str, HostEndpoint] = {}
        for hep in policy_set.host_endpoints:
            for ip in hep.expected_ips:
                self._heps_by_ip.setdefault(ip, hep)
        self._sets_by_key = {(s.namespace, s.name): s for s in policy_set.network_sets}
        self._cache: dict[FlowKey, Decision] = {}
        self._local_cache: dict[Endpoint, tuple[_Local, tuple[str, ...]]] = {}
        self._side_cache: dict[Endpoint, tuple[_Side, tuple[str, ...]]] = {}
        self._keys_cache: dict[Selector, frozenset[str]] = {}
        self._selection_cache: dict[
            tuple[int, Endpoint, str, bool],
            tuple[tuple[Tier, tuple[_CPolicy, ...], tuple[str, ...], tuple[str, ...]], ...],
        ] = {}

    # -- public API -----------------------------------------------------------------------

    def evaluate(self, flow_key: FlowKey) -> Decision:
        """The verdict for one flow record: egress at the source for reporter ``src``, ingress
        at the destination for ``dst``."""
        cached = self._cache.get(flow_key)
        if cached is not None:
            return cached
        if flow_key.reporter not in ("src", "dst"):
            raise PolicyError(f"reporter {flow_key.reporter!r} cannot be evaluated; expected src or dst")
        direction = EGRESS if flow_key.reporter == "src" else INGRESS
        decision = self._decide(flow_key.source, flow_key.dest, flow_key.proto, flow_key.dest_port, direction)
        self._cache[flow_key] = decision
        return decision

    def connection(
        self,
        source: Endpoint | str,
        dest: Endpoint | str,
        proto: str | int = "tcp",
        port: int | None = None,
    ) -> Connection:
        """Both sides of a connection (V1): allowed iff the egress check at the source (if it is
        a Calico endpoint) and the ingress check at the destination (likewise) both allow."""
        src = self.endpoint(source) if isinstance(source, str) else source
        dst = self.endpoint(dest) if isinstance(dest, str) else dest
        egress = self.evaluate(FlowKey("src", src, dst, _proto_text(proto), port))
        ingress = self.evaluate(FlowKey("dst", src, dst, _proto_text(proto), port))
        action = "allow" if egress.action == "allow" and ingress.action == "allow" else "deny"
        pending = (
            "allow"
            if (egress.pending_action or egress.action) == "allow"
            and (ingress.pending_action or ingress.action) == "allow"
            else "deny"
        )
        notes = tuple(sorted(set(egress.notes) | set(ingress.notes)))
        return Connection(action, egress, ingress, pending, notes)

    def explain(
        self,
        source: Endpoint | str,
        dest: Endpoint | str,
        proto: str | int = "tcp",
        port: int | None = None,
    ) -> Explanation:
        """:meth:`connection` plus the tier-by-tier walk of both sides in plain sentences."""
        src = self.endpoint(source) if isinstance(source, str) else source
        dst = self.endpoint(dest) if isinstance(dest, str) else dest
        conn = self.connection(src, dst, proto, port)
        proto_value = normalize_protocol(_proto_text(proto))
        steps: dict[str, tuple[str, ...]] = {}
        for direction in (EGRESS, INGRESS):
            ctx = _Ctx(log=[])
            local_ep = src if direction == EGRESS else dst
            if not local_ep.is_policy_endpoint:
                where = "source" if direction == EGRESS else "destination"
                steps[direction] = (
                    f"The {where} {local_ep.display} is not a Calico endpoint (pod or host endpoint): "
                    f"no {direction.lower()} policy is evaluated for it.",
                )
                continue
            self._walk(self._enforced_plan, src, dst, proto_value, port, direction, ctx, staged=False)
            assert ctx.log is not None
            steps[direction] = tuple(ctx.log)
        return Explanation(conn, steps[EGRESS], steps[INGRESS], src, dst, protocol_name(proto_value), port)

    def endpoint(self, text: str) -> Endpoint:
        """An endpoint from ``namespace/pod``, an IP address, or a network set ``namespace/name``.

        Pods need the inventory; an IP that no pod, host endpoint or network set owns is an
        address outside the cluster (kind ``net``).
        """
        text = text.strip()
        ip = _ip(text)
        if ip is not None:
            ip_text = str(ip)
            if self.inventory is not None:
                pod = self.inventory.pod_by_ip(ip_text)
                if pod is not None:
                    # Keep the address that was given: a dual-stack pod's second IP is what nets
                    # and ipBlocks compare (K11), not the pod's first IP.
                    return replace(self.inventory.endpoint(pod), ip=ip_text)
            hep = self._heps_by_ip.get(ip_text)
            if hep is not None:
                return Endpoint("hep", None, hep.name, hep.labels, ip_text, named_ports=hep.ports)
            return Endpoint("net", None, None, {}, ip_text)
        namespace, sep, name = text.partition("/")
        if not sep:
            hep = self._heps_by_name.get(text)
            if hep is not None:
                first_ip = hep.expected_ips[0] if hep.expected_ips else None
                return Endpoint("hep", None, hep.name, hep.labels, first_ip, named_ports=hep.ports)
            nset = self._sets_by_key.get((None, text))
            if nset is not None:
                return Endpoint("ns", None, nset.name, nset.labels)
            raise PolicyError(f"{text!r}: give NAMESPACE/POD, an IP address, or a host endpoint name")
        if self.inventory is not None:
            pods = self.inventory.find_pods(namespace, name)
            if pods:
                return self.inventory.endpoint(pods[0])
        nset = self._sets_by_key.get((namespace, name))
        if nset is not None:
            return Endpoint("ns", namespace, nset.name, nset.labels)
        raise PolicyError(
            f"no pod {name!r} in namespace {namespace!r}: give --inventory with the cluster's pods, "
            "or describe the endpoint with labels"
        )

    # -- evaluation -----------------------------------------------------------------------

    def _known(self, ep: Endpoint) -> Endpoint:
        """A ``net`` endpoint whose IP is a known pod's or host endpoint's, as that endpoint."""
        if ep.kind != "net" or _ip(ep.ip) is None:
            return ep
        resolved = self.endpoint(str(ep.ip))
        return resolved if resolved.kind != "net" else ep

    def _decide(
        self, src: Endpoint, dst: Endpoint, proto: str | int | None, port: int | None, direction: str
    ) -> Decision:
        # V1: an address that belongs to a known pod (or host endpoint) is that endpoint, also on
        # the side whose policies are evaluated (the peer side resolves it the same way).
        src, dst = self._known(src), self._known(dst)
        local_ep = src if direction == EGRESS else dst
        if not local_ep.is_policy_endpoint:
            where = "source" if direction == EGRESS else "destination"
            return Decision(
                "allow",
                notes=(f"the {where} is not a Calico endpoint: no {direction.lower()} policy applies",),
                pending_action="allow",
                evaluated=False,
            )
        proto_value = normalize_protocol(proto)
        ctx = _Ctx()
        action, enforced = self._walk(
            self._enforced_plan, src, dst, proto_value, port, direction, ctx, staged=False
        )
        pending_ctx = _Ctx()
        if self._has_staged:
            pending_action, pending = self._walk(
                self._pending_plan, src, dst, proto_value, port, direction, pending_ctx, staged=True
            )
        else:
            pending_action, pending = action, enforced
        alt_action: str | None = None
        alt_enforced: list[PolicyHit] = []
        alt_pending: list[PolicyHit] = []
        if ctx.undecided or pending_ctx.undecided:
            alt_action, alt_enforced = self._walk(
                self._enforced_plan, src, dst, proto_value, port, direction, _Ctx(lenient=True), staged=False
            )
            if self._has_staged:
                _, alt_pending = self._walk(
                    self._pending_plan,
                    src,
                    dst,
                    proto_value,
                    port,
                    direction,
                    _Ctx(lenient=True),
                    staged=True,
                )
            else:
                alt_pending = alt_enforced
            if alt_action == action and alt_enforced == enforced and alt_pending == pending:
                alt_action = None
        return Decision(
            action,
            tuple(enforced),
            tuple(pending),
            tuple(sorted(ctx.notes | pending_ctx.notes)),
            pending_action,
            alternative_action=alt_action,
            alternative_enforced=tuple(alt_enforced) if alt_action else (),
            alternative_pending=tuple(alt_pending) if alt_action else (),
        )

    def _walk(
        self,
        plan: _Plan,
        src_ep: Endpoint,
        dst_ep: Endpoint,
        proto: int | str | None,
        port: int | None,
        direction: str,
        ctx: _Ctx,
        *,
        staged: bool,
    ) -> tuple[str, list[PolicyHit]]:
        local_ep = src_ep if direction == EGRESS else dst_ep
        local, local_notes = self._local(local_ep)
        ctx.notes.update(local_notes)
        src, src_notes = self._side(src_ep)
        dst, dst_notes = self._side(dst_ep)
        ctx.notes.update(src_notes)
        ctx.notes.update(dst_notes)
        way = "egress" if direction == EGRESS else "ingress"
        hits: list[PolicyHit] = []
        if ctx.log is not None:
            ctx.say(
                f"{way.capitalize()} at {local.ident.display}: {src.display} -> {dst.display} "
                f"{protocol_name(proto)}/{'?' if port is None else port}."
            )
        for tier, applicable, sel_notes, sel_log in self._selection(
            plan, local_ep, local.ident, direction, ctx.lenient
        ):
            if sel_notes or sel_log:
                ctx.undecided = True
                ctx.notes.update(sel_notes)
                for line in sel_log:
                    if ctx.log is not None:
                        ctx.say(line)
            if not applicable:
                if ctx.log is not None:
                    ctx.say(
                        f"Tier {tier.name} ({_tier_order(tier)}): no policy selects {local.ident.display} for {way}; skipped."
                    )
                continue
            if ctx.log is not None:
                names = ", ".join(cp.policy.display for cp in applicable)
                ctx.say(f"Tier {tier.name} ({_tier_order(tier)}) applies; policies in order: {names}.")
            verdict: str | None = None
            for cp in applicable:
                rules = cp.rules(direction)
                if not rules and ctx.log is not None:
                    ctx.say(f"  {cp.policy.display} has no {way} rules.")
                for index, crule in enumerate(rules):
                    matched, why = self._rule(crule, cp.policy, src, dst, local, proto, port, direction, ctx)
                    label = (
                        f"  {cp.policy.display} {way} rule {index} ({crule.rule.action})"
                        if ctx.log is not None
                        else ""
                    )
                    if matched is None:
                        ctx.undecided = True
                        matched = (crule.rule.action == "Deny") != ctx.lenient
                        ctx.notes.add(
                            f"{cp.policy.display} {way} rule {index} ({crule.rule.action}) could not be decided "
                            f"for {local.ident.display}: {why}; treated as "
                            f"{'matching' if matched else 'not matching'} (the stricter outcome)"
                        )
                        if ctx.log is not None:
                            ctx.say(
                                f"{label}: undecided ({why}); treated as {'matching' if matched else 'not matching'}."
                            )
                    elif not matched and ctx.log is not None:
                        ctx.say(f"{label}: does not match ({why}).")
                    if not matched:
                        continue
                    if crule.rule.action == "Log":
                        if ctx.log is not None:
                            ctx.say(f"{label}: matches; Log continues with the next rule.")
                        continue
                    hits.append(cp.policy.hit(len(hits), crule.rule.action.lower(), index))
                    verdict = crule.rule.action
                    if verdict == "Pass":
                        if ctx.log is not None:
                            ctx.say(f"{label}: matches; Pass skips the rest of tier {tier.name}.")
                    else:
                        if ctx.log is not None:
                            ctx.say(
                                f"{label}: matches; the connection is {'allowed' if verdict == 'Allow' else 'denied'}."
                            )
                    break
                if verdict is not None:
                    break
            if verdict in ("Allow", "Deny"):
                return verdict.lower(), hits
            if verdict == "Pass":
                continue
            enforced_pols = [cp for cp in applicable if not cp.policy.staged]
            blame = (enforced_pols or applicable)[-1]
            action = tier.default_action.lower()
            hits.append(blame.policy.hit(len(hits), action, -1))
            if action == "deny":
                if ctx.log is not None:
                    ctx.say(
                        f"  No rule of tier {tier.name} matched: end-of-tier deny (blamed on {blame.policy.display})."
                    )
                return "deny", hits
            if ctx.log is not None:
                ctx.say(
                    f"  No rule of tier {tier.name} matched: the tier's defaultAction Pass goes to the next tier."
                )
        return self._profiles(local, hits, ctx)

    def _profiles(self, local: _Local, hits: list[PolicyHit], ctx: _Ctx) -> tuple[str, list[PolicyHit]]:
        ident = local.ident
        if ident.kind == "wep":
            if ctx.log is not None:
                ctx.say(
                    f"Profiles: kns.{ident.namespace} allows everything (pods are allowed unless a policy denies)."
                )
            hits.append(profile_hit(len(hits), f"kns.{ident.namespace}", "allow"))
            return "allow", hits
        if local.profiles is None:
            ctx.notes.add(
                f"host endpoint {ident.display} is not among the HostEndpoint manifests: its profiles are "
                "unknown; treated as having none (Calico denies host-endpoint traffic no policy allows)"
            )
        if local.profiles and DEFAULT_ALLOW_PROFILE in local.profiles:
            if ctx.log is not None:
                ctx.say(f"Profiles: {DEFAULT_ALLOW_PROFILE} allows everything.")
            hits.append(profile_hit(len(hits), DEFAULT_ALLOW_PROFILE, "allow"))
            return "allow", hits
        unknown = [p for p in local.profiles or () if p != DEFAULT_ALLOW_PROFILE]
        if unknown:
            ctx.notes.add(
                f"profiles {', '.join(unknown)} of host endpoint {ident.display} are not evaluated "
                "(Profile resources are not loaded); treated as not allowing"
            )
        if ctx.log is not None:
            ctx.say(
                f"Profiles: host endpoint {ident.display} has no profile that allows; Calico denies "
                "(failsafe ports are not modelled)."
            )
        hits.append(profile_hit(len(hits), "__NO_MATCH__", "deny"))
        return "deny", hits

    def _selection(
        self, plan: _Plan, local_ep: Endpoint, ident: _Ident, direction: str, lenient: bool
    ) -> tuple[tuple[Tier, tuple[_CPolicy, ...], tuple[str, ...], tuple[str, ...]], ...]:
        """Per tier: the policies that select the endpoint for the direction, with the notes and
        explain lines of undecided selections. It does not depend on the peer, so it is cached
        per endpoint: a key costs the rule checks only."""
        cache_key = (id(plan), local_ep, direction, lenient)
        cached = self._selection_cache.get(cache_key)
        if cached is not None:
            return cached
        out = []
        for tier, cpols in plan:
            applicable: list[_CPolicy] = []
            notes: list[str] = []
            log: list[str] = []
            for cp in cpols:
                if direction not in cp.policy.types:
                    continue
                if cp.policy.namespace is not None and cp.policy.namespace != ident.namespace:
                    # A namespaced policy selects only its own namespace's endpoints: decided
                    # even when the endpoint's other labels are not known.
                    continue
                why = ident.view.undecided(self._keys(cp.selector))
                if why is None:
                    if cp.selector.matches(ident.view.labels):
                        applicable.append(cp)
                    continue
                if lenient:
                    log.append(f"  {cp.policy.display}: selection undecided ({why}); assumed not to select.")
                    continue
                notes.append(
                    f"whether {cp.policy.display} selects {ident.display} could not be decided: {why}; "
                    "assumed to select it (the stricter outcome)"
                )
                log.append(f"  {cp.policy.display}: selection undecided ({why}); assumed to select.")
                applicable.append(cp)
            out.append((tier, tuple(applicable), tuple(notes), tuple(log)))
        result = tuple(out)
        self._selection_cache[cache_key] = result
        return result

    def _keys(self, sel: Selector) -> frozenset[str]:
        keys = self._keys_cache.get(sel)
        if keys is None:
            keys = sel.label_keys
            self._keys_cache[sel] = keys
        return keys

    # -- rule matching (three-valued: True, False, None = undecided) ----------------------

    def _rule(
        self,
        crule: _CRule,
        policy: Policy,
        src: _Side,
        dst: _Side,
        local: _Local,
        proto: int | str | None,
        port: int | None,
        direction: str,
        ctx: _Ctx,
    ) -> tuple[bool | None, str]:
        rule = crule.rule
        unknown: list[str] = []
        if rule.protocol is not None:
            if proto is None:
                unknown.append("the flow's protocol is not known")
            elif proto != rule.protocol:
                return False, f"protocol {protocol_name(proto)} is not {protocol_name(rule.protocol)}"
        if rule.not_protocol is not None:
            if proto is None:
                unknown.append("the flow's protocol is not known")
            elif proto == rule.not_protocol:
                return False, f"protocol {protocol_name(proto)} is excluded by notProtocol"
        if rule.ip_version is not None:
            known = [ip for side in (src, dst) if side.ips for ip in side.ips]
            if known and all(ip.version != rule.ip_version for ip in known):
                return False, f"the rule is for IPv{rule.ip_version}"
        for name, entity, side, is_dest in (
            ("source", crule.src, src, False),
            ("destination", crule.dst, dst, True),
        ):
            result, why = self._entity(entity, side, is_dest, rule.protocol, port, unknown)
            if result is False:
                return False, f"{name}: {why}"
        if rule.has_icmp:
            ctx.notes.add(
                f"{policy.display}: ICMP type/code criteria are not evaluated (flow logs carry no ICMP type)"
            )
        if rule.has_http:
            ctx.notes.add(f"{policy.display}: HTTP match criteria are not evaluated (application layer)")
        if unknown:
            return None, "; ".join(sorted(set(unknown)))
        return True, ""

    def _entity(
        self,
        ce: _CEntity,
        side: _Side,
        is_dest: bool,
        rule_proto: int | str | None,
        port: int | None,
        unknown: list[str],
    ) -> tuple[bool | None, str]:
        er = ce.source
        if ce.empty:
            return True, ""
        if er.nets:
            inside = _nets_match(er.nets, side)
            if inside is None:
                unknown.append(f"the IP of {side.display} is not known (masked in the flow log)")
            elif not inside:
                return False, f"the IP of {side.display} is not in {', '.join(map(str, er.nets))}"
        if er.not_nets:
            inside = _nets_match(er.not_nets, side)
            if inside is None:
                unknown.append(f"the IP of {side.display} is not known (masked in the flow log)")
            elif inside:
                return False, f"the IP of {side.display} is in notNets {', '.join(map(str, er.not_nets))}"
        if ce.positive is not None:
            result = self._any(ce.positive, side, unknown)
            if result is False:
                return False, f"{side.display} is not selected by {_describe_selection(ce.source, ce.scope)}"
        if ce.negative is not None:
            result = self._any(ce.negative, side, unknown)
            if result is True:
                return False, f"{side.display} is excluded by notSelector {ce.negative}"
        if er.ports or er.not_ports:
            if not is_dest:
                unknown.append("source ports are not recorded in flow logs")
            else:
                if er.ports:
                    r = self._ports(er.ports, port, rule_proto, side, unknown)
                    if r is False:
                        return False, f"port {port} is not in {', '.join(map(str, er.ports))}"
                if er.not_ports:
                    r = self._ports(er.not_ports, port, rule_proto, side, unknown)
                    if r is True:
                        return False, f"port {port} is in notPorts {', '.join(map(str, er.not_ports))}"
        if er.services:
            unknown.append(
                "Kubernetes service matches need the service's endpoints, which flowlens does not load"
            )
        return True, ""

    def _any(self, sel: Selector, side: _Side, unknown: list[str]) -> bool | None:
        keys = self._keys(sel)
        result: bool | None = False
        for ident in side.idents:
            why = ident.view.undecided(keys)
            if why is not None:
                unknown.append(why)
                result = None
                continue
            if sel.matches(ident.view.labels):
                return True
        if result is False and not side.complete:
            unknown.append(f"the IP of {side.display} is not known, so its network sets are not known")
            return None
        return result

    @staticmethod
    def _ports(
        ports: tuple[Port, ...],
        port: int | None,
        rule_proto: int | str | None,
        side: _Side,
        unknown: list[str],
    ) -> bool | None:
        if port is None:
            unknown.append("the flow's destination port is not known")
            return None
        undecided = False
        for p in ports:
            if isinstance(p, PortRange):
                if p.contains(port):
                    return True
            elif isinstance(p, NamedPort):
                if side.named_ports is None:
                    undecided = True
                    unknown.append(f"the named ports of {side.display} are not known (give --inventory)")
                    continue
                for cp in side.named_ports:
                    if (
                        cp.name == p.name
                        and cp.port == port
                        and (rule_proto is None or cp.protocol == rule_proto)
                    ):
                        return True
        return None if undecided else False

    # -- endpoint resolution --------------------------------------------------------------

    def _ns_labels(self, namespace: str, given: object) -> tuple[dict[str, str] | None, str]:
        if given is not None:
            labels = dict(given)  # type: ignore[call-overload]
            labels.setdefault(NAMESPACE_NAME_LABEL, namespace)  # K15: always present
            return labels, ""
        if self.inventory is not None:
            labels = self.inventory.namespace_labels(namespace)
            if labels is not None:
                return labels.as_dict(), ""
            return None, f"the labels of namespace {namespace} are not known (it is not in the inventory)"
        return None, f"the labels of namespace {namespace} are not known (give --inventory)"

    def _wep_ident(
        self, ep: Endpoint
    ) -> tuple[_Ident, tuple[ContainerPort, ...] | None, tuple[IPAddress, ...] | None]:
        ns = ep.namespace or "default"
        pod = None
        template = None
        candidates: list[IPAddress] = []
        if self.inventory is not None:
            if ep.name:
                pod = self.inventory.pod(ns, ep.name)
            if pod is None and ep.ip:
                candidate = self.inventory.pod_by_ip(ep.ip)
                if candidate is not None and candidate.namespace == ns:
                    pod = candidate
            if pod is None and ep.name:
                pods = [
                    p
                    for p in self.inventory.find_pods(ns, ep.name)
                    if p.name_aggr == ep.name or ep.name.endswith("*")
                ]
                if pods and all(
                    (p.service_account, p.named_ports) == (pods[0].service_account, pods[0].named_ports)
                    for p in pods
                ):
                    template = pods[0]
                for p in pods:
                    candidates.extend(ip for ip in map(_ip, p.ips) if ip is not None)
        known = pod or template
        labels: dict[str, str] = dict(ep.labels)
        labels_known = ep.labels_known
        if not labels_known and known is not None:
            labels = known.labels.as_dict()
            labels_known = True
        sa = ep.service_account or (known.service_account if known else None)
        named_ports = ep.named_ports if ep.named_ports is not None else (known.named_ports if known else None)
        prefixes: list[str] = []
        whys: list[str] = []
        view: dict[str, str] = dict(labels)
        view[NAMESPACE_LABEL] = ns
        view[ORCHESTRATOR_LABEL] = "k8s"
        display = f"{ns}/{ep.name or ep.ip or '?'}"
        if not labels_known:
            prefixes.append("")
            whys.append(f"the labels of {display} are not known (not in the flow record)")
        ns_labels, ns_why = self._ns_labels(ns, ep.namespace_labels)
        if ns_labels is None:
            ns_labels = {NAMESPACE_NAME_LABEL: ns}
            prefixes.append(NAMESPACE_LABEL_PREFIX)
            whys.append(ns_why)
        for key, value in ns_labels.items():
            view[NAMESPACE_LABEL_PREFIX + key] = value
        view[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = ns
        if sa is None:
            prefixes += [SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_LABEL_PREFIX]
            why = f"the service account of {display} is not known (give --inventory)"
            whys += [why, why]
        else:
            if len(sa) < 63:
                view[SERVICE_ACCOUNT_LABEL] = sa
            sa_labels = ep.service_account_labels
            if sa_labels is None and self.inventory is not None:
                sa_labels = self.inventory.service_account_labels(ns, sa)
            if sa_labels is None:
                prefixes.append(SERVICE_ACCOUNT_LABEL_PREFIX)
                whys.append(f"the labels of service account {ns}/{sa} are not known (give --inventory)")
            else:
                for key, value in sa_labels.items():
                    view[SERVICE_ACCOUNT_LABEL_PREFIX + key] = value
            view[SERVICE_ACCOUNT_LABEL_PREFIX + NAME_LABEL] = sa
        ident = _Ident("wep", ns, ep.name, _View(view, tuple(prefixes), tuple(whys)), display)
        own_ip = _ip(ep.ip)
        if own_ip is not None:
            ips: tuple[IPAddress, ...] | None = (own_ip,)
        elif pod is not None:
            ips = tuple(ip for ip in map(_ip, pod.ips) if ip is not None) or None
        else:
            ips = tuple(candidates) or None
        return ident, named_ports, ips

    def _set_ident(self, nset: NetworkSet) -> _Ident:
        view: dict[str, str] = dict(nset.labels)
        prefixes: list[str] = []
        whys: list[str] = []
        if nset.namespace is not None:
            # Namespaced network sets carry their namespace and inherit its labels (kns profile).
            view[NAMESPACE_LABEL] = nset.namespace
            ns_labels, why = self._ns_labels(nset.namespace, None)
            if ns_labels is None:
                ns_labels = {NAMESPACE_NAME_LABEL: nset.namespace}
                prefixes.append(NAMESPACE_LABEL_PREFIX)
                whys.append(why)
            for key, value in ns_labels.items():
                view[NAMESPACE_LABEL_PREFIX + key] = value
            view[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = nset.namespace
        display = f"{nset.namespace}/{nset.name}" if nset.namespace else nset.name
        kind = "NetworkSet" if nset.namespace else "GlobalNetworkSet"
        return _Ident(
            "ns", nset.namespace, nset.name, _View(view, tuple(prefixes), tuple(whys)), f"{kind} {display}"
        )

    def _hep_ident(self, ep: Endpoint) -> tuple[_Ident, HostEndpoint | None]:
        hep = self._heps_by_name.get(ep.name or "") if ep.name else None
        if hep is None and ep.ip:
            hep = self._heps_by_ip.get(ep.ip)
        if hep is None and ep.name:
            # Flow logs aggregate host endpoints to the hostname: one HEP on that node is it.
            on_node = [h for h in self._heps_by_name.values() if h.node == ep.name]
            if len(on_node) == 1:
                hep = on_node[0]
        labels = dict(hep.labels) if hep is not None else dict(ep.labels)
        prefixes: tuple[str, ...] = ()
        whys: tuple[str, ...] = ()
        name = hep.name if hep is not None else ep.name
        display = f"host endpoint {name or ep.ip or '?'}"
        if hep is None and not ep.labels_known:
            prefixes, whys = ("",), (f"the labels of {display} are not known",)
        return _Ident("hep", None, name, _View(labels, prefixes, whys), display), hep

    def _local(self, ep: Endpoint) -> tuple[_Local, tuple[str, ...]]:
        cached = self._local_cache.get(ep)
        if cached is not None:
            return cached
        if ep.kind == "wep":
            ident, ports, _ = self._wep_ident(ep)
            result = (_Local(ident, ports, ("kns",)), ())
        else:
            ident, hep = self._hep_ident(ep)
            if hep is not None:
                local = _Local(ident, hep.ports, hep.profiles)
            else:
                local = _Local(ident, ep.named_ports, None)
            result = (local, ())
        self._local_cache[ep] = result
        return result

    def _side(self, ep: Endpoint) -> tuple[_Side, tuple[str, ...]]:
        cached = self._side_cache.get(ep)
        if cached is not None:
            return cached
        ip = _ip(ep.ip)
        ips: tuple[IPAddress, ...] | None = None if ip is None else (ip,)
        ip_class: str | None = None
        idents: list[_Ident] = []
        named_ports: tuple[ContainerPort, ...] | None = ()
        kind = ep.kind
        display = ep.display
        original = ep
        if kind == "net" and ip is not None:
            # An address the record did not attribute may still be a pod or host endpoint we know.
            pod = self.inventory.pod_by_ip(str(ip)) if self.inventory is not None else None
            if pod is not None and self.inventory is not None:
                ep = self.inventory.endpoint(pod)
                ep = Endpoint(
                    "wep",
                    ep.namespace,
                    ep.name,
                    ep.labels,
                    str(ip),
                    ep.service_account,
                    ep.named_ports,
                    ep.namespace_labels,
                    ep.service_account_labels,
                )
                kind = "wep"
            elif str(ip) in self._heps_by_ip:
                hep = self._heps_by_ip[str(ip)]
                ep = Endpoint("hep", None, hep.name, hep.labels, str(ip), named_ports=hep.ports)
                kind = "hep"
        elif kind == "net" and ep.name in ("pvt", "pub"):
            ip_class = ep.name
        own_set: NetworkSet | None = None
        if kind == "wep":
            ident, named_ports, ips = self._wep_ident(ep)
            idents.append(ident)
            display = ident.display
        elif kind == "hep":
            ident, hep_obj = self._hep_ident(ep)
            idents.append(ident)
            named_ports = hep_obj.ports if hep_obj is not None else ep.named_ports
            if ips is None and hep_obj is not None and hep_obj.expected_ips:
                ips = tuple(a for a in map(_ip, hep_obj.expected_ips) if a is not None) or None
            display = ident.display
        elif kind == "ns":
            own_set = self._sets_by_key.get((ep.namespace, ep.name or ""))
            if own_set is not None:
                idents.append(self._set_ident(own_set))
            else:
                labels = dict(ep.labels)
                if ep.namespace:
                    labels[NAMESPACE_LABEL] = ep.namespace
                    labels[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = ep.namespace
                    labels[NAMESPACE_LABEL_PREFIX + NAMESPACE_NAME_LABEL] = ep.namespace
                idents.append(_Ident("ns", ep.namespace, ep.name, _View(labels), f"network set {ep.display}"))
        complete = True
        if ips is not None:
            for nset in self._network_sets:
                if nset is not own_set and any(nset.contains(a) for a in ips):
                    idents.append(self._set_ident(nset))
        elif kind in ("net", "ns"):
            # A masked address may be in any network set that can hold an address of its class.
            possible = [
                n
                for n in self._network_sets
                if n is not own_set and (ip_class is None or any(_may_hold(c, ip_class) for c in n.nets))
            ]
            complete = not possible
        side = _Side(ips, ip_class, tuple(idents), complete, named_ports, display)
        result = (side, ())
        self._side_cache[original] = result
        return result


def _tier_order(tier: Tier) -> str:
    return "no order" if tier.order is None else f"order {_number(tier.order)}"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _proto_text(proto: str | int) -> str:
    return str(proto).lower() if isinstance(proto, str) else str(proto)
