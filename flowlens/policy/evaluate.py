"""Policy evaluation: the verdict and the Calico trace for one flow, the way Felix computes them.

Owns :class:`Evaluator` and its results (:class:`Decision`, :class:`Connection`,
:class:`Explanation`). For a :class:`~flowlens.policy.model.FlowKey` it evaluates the egress side
at the source (reporter ``src``) or the ingress side at the destination (reporter ``dst``)
(rulebook V2); :meth:`Evaluator.connection` evaluates both sides (rulebook V1: a connection is
allowed iff both are). Every rule it applies is numbered in ``docs/policy/rulebook.md``.

The evaluator coordinates; the work is in the modules beside it:

* :mod:`~flowlens.policy.compiled` compiles the policy set once into plans (tiers and policies
  in order, selectors combined the way Felix combines them), one for the policies in force and
  one with staged policies standing in (rulebook S1, S2);
* :mod:`~flowlens.policy.endpoints` resolves the two sides of a flow key into the labels,
  named ports, addresses and network sets Felix sees, with the inventory's facts;
* :mod:`~flowlens.policy.walk` walks the tiers to a verdict and a trace, and
  :mod:`~flowlens.policy.matching` matches each rule, three-valued.

Undecidable rules: without an inventory some facts are unknown (rulebook U1). A selector or field
that depends on an unknown fact is *undecided*; flowlens then takes the stricter outcome and says
so in ``Decision.notes`` (rulebook U2). When the other way round would give a different result,
``Decision.alternative_*`` holds it (rulebook U3; replay keeps a recorded verdict that is one of
the two). Traces are tuples of :class:`flowlens.formats.hits.PolicyHit`, whose ``.hit`` is
Calico's modern string form.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowlens.errors import PolicyError
from flowlens.formats.hits import PolicyHit
from flowlens.policy.compiled import EGRESS, INGRESS, SERVICE_ACCOUNT_LABEL, compile_plans
from flowlens.policy.endpoints import NAME_LABEL, EndpointResolver
from flowlens.policy.inventory import Inventory
from flowlens.policy.matching import Matcher
from flowlens.policy.model import Endpoint, FlowKey, PolicySet, normalize_protocol, protocol_name
from flowlens.policy.versions import CalicoVersion, for_version
from flowlens.policy.walk import DEFAULT_ALLOW_PROFILE, Packet, TierWalker

__all__ = [
    "DEFAULT_ALLOW_PROFILE",
    "EGRESS",
    "INGRESS",
    "NAME_LABEL",
    "SERVICE_ACCOUNT_LABEL",
    "Connection",
    "Decision",
    "Evaluator",
    "Explanation",
]


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
    """Both sides of one connection. ``action`` is allow iff both evaluated sides allow (rulebook V1)."""

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
# The evaluator


class Evaluator:
    """Evaluates flows against one policy set (and, optionally, a cluster inventory), as
    ``calico_version`` of Calico does (detected from the manifests when None, see
    :mod:`flowlens.policy.versions`).

    Results are memoized per :class:`FlowKey`, and endpoint resolution per :class:`Endpoint`, so
    replaying millions of records costs one evaluation per distinct key.
    """

    def __init__(
        self,
        policy_set: PolicySet,
        inventory: Inventory | None = None,
        *,
        calico_version: CalicoVersion | None = None,
    ) -> None:
        # Rulebook G1: the policies the Calico version enforces (detected from the manifests when
        # not given); ``policy_set.notes`` says which cluster policies that leaves out.
        self.policy_set, self.calico_version = for_version(policy_set, calico_version)
        policy_set = self.policy_set
        self.inventory = inventory
        self._plans = compile_plans(policy_set, self.calico_version)
        self._endpoints = EndpointResolver(policy_set, inventory)
        self._walker = TierWalker(self._endpoints, Matcher())
        self._cache: dict[FlowKey, Decision] = {}

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
        """Both sides of a connection (rulebook V1): allowed iff the egress check at the source (if
        it is a Calico endpoint) and the ingress check at the destination (likewise) both allow."""
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

    def allows(
        self,
        source: Endpoint,
        dest: Endpoint,
        proto: str | int = "tcp",
        port: int | None = None,
    ) -> bool:
        """Whether :meth:`connection` would allow it, deciding the ingress side only when the
        egress side allows (a denied egress denies the connection whatever the ingress says)."""
        proto_text = _proto_text(proto)
        if self.evaluate(FlowKey("src", source, dest, proto_text, port)).action != "allow":
            return False
        return self.evaluate(FlowKey("dst", source, dest, proto_text, port)).action == "allow"

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
            local_ep = src if direction == EGRESS else dst
            if not local_ep.is_policy_endpoint:
                where = "source" if direction == EGRESS else "destination"
                steps[direction] = (
                    f"The {where} {local_ep.display} is not a Calico endpoint (pod or host endpoint): "
                    f"no {direction.lower()} policy is evaluated for it.",
                )
                continue
            packet = Packet(src, dst, proto_value, port, direction)
            walk = self._walker.walk(self._plans.enforced, packet, explain=True)
            steps[direction] = walk.steps
        return Explanation(conn, steps[EGRESS], steps[INGRESS], src, dst, protocol_name(proto_value), port)

    def endpoint(self, text: str) -> Endpoint:
        """An endpoint from ``namespace/pod``, an IP address, or a network set ``namespace/name``.

        Pods need the inventory; an IP that no pod, host endpoint or network set owns is an
        address outside the cluster (kind ``net``).
        """
        return self._endpoints.endpoint(text)

    def forget(self) -> None:
        """Drop every memoized decision, endpoint resolution and policy selection (the compiled
        policies stay), e.g. to measure evaluation without memoization."""
        self._cache.clear()
        self._endpoints.forget()
        self._walker.forget()

    # -- evaluation -----------------------------------------------------------------------

    def _decide(
        self, src: Endpoint, dst: Endpoint, proto: str | int | None, port: int | None, direction: str
    ) -> Decision:
        # Rulebook V1: an address that belongs to a known pod (or host endpoint) is that endpoint,
        # also on the side whose policies are evaluated (the peer side resolves it the same way).
        src, dst = self._endpoints.known(src), self._endpoints.known(dst)
        local_ep = src if direction == EGRESS else dst
        if not local_ep.is_policy_endpoint:
            where = "source" if direction == EGRESS else "destination"
            return Decision(
                "allow",
                notes=(f"the {where} is not a Calico endpoint: no {direction.lower()} policy applies",),
                pending_action="allow",
                evaluated=False,
            )
        packet = Packet(src, dst, normalize_protocol(proto), port, direction)
        plans, walker = self._plans, self._walker
        enforced = walker.walk(plans.enforced, packet)
        pending = walker.walk(plans.pending, packet) if plans.has_staged else enforced
        alt_action: str | None = None
        alt_enforced: tuple[PolicyHit, ...] = ()
        alt_pending: tuple[PolicyHit, ...] = ()
        if enforced.undecided or pending.undecided:
            # Rulebook U3: the outcome with every undecided fact going the other way.
            alternative = walker.walk(plans.enforced, packet, lenient=True)
            alt_action, alt_enforced = alternative.action, alternative.hits
            alt_pending = (
                walker.walk(plans.pending, packet, lenient=True).hits if plans.has_staged else alt_enforced
            )
            if (
                alt_action == enforced.action
                and alt_enforced == enforced.hits
                and alt_pending == pending.hits
            ):
                alt_action = None
        return Decision(
            enforced.action,
            enforced.hits,
            pending.hits,
            tuple(sorted(enforced.notes | pending.notes)),
            pending.action,
            alternative_action=alt_action,
            alternative_enforced=alt_enforced if alt_action else (),
            alternative_pending=alt_pending if alt_action else (),
        )


def _proto_text(proto: str | int) -> str:
    return str(proto).lower() if isinstance(proto, str) else str(proto)
