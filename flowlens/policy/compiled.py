"""Compiled policies: what the evaluator walks, built once per policy set.

Owns the compiled forms of entity rules, rules and policies (every selector field combined into
the one selector Felix evaluates, see ``docs/policy/rulebook.md``) and the :class:`Plans`: per
tier, in tier order (rulebook C1), the policies in evaluation order (rulebook C3 and G8, the
tie-break of the Calico version), once for the policies in force and once with staged policies
standing in (rulebook S2). The tiers Calico creates itself at that version are in every plan, even
empty, so that ``explain`` walks the complete tier order (rulebook G2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flowlens.policy.model import BUILTIN_TIERS, EntityRule, Policy, PolicySet, Rule, Tier
from flowlens.policy.selector import (
    NAMESPACE_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
    Eq,
    In,
    Selector,
    and_,
    to_namespace_scope,
)
from flowlens.policy.versions import LATEST, CalicoVersion, policy_sort_key

SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"

INGRESS = "Ingress"
EGRESS = "Egress"


@dataclass(frozen=True)
class CompiledEntity:
    """An entity rule (source or destination of a rule) as Felix evaluates it."""

    source: EntityRule
    positive: Selector | None
    negative: Selector | None
    scope: str | None  # the policy namespace the selector is limited to, for messages
    empty: bool  # no criteria: matches any peer

    @functools.cached_property
    def selection(self) -> str:
        """:func:`describe_selection` of the entity rule (said whenever a peer is not selected)."""
        return describe_selection(self.source, self.scope)


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its source and destination entity rules compiled."""

    rule: Rule
    src: CompiledEntity
    dst: CompiledEntity


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy with the one selector that decides where it applies, and its compiled rules."""

    policy: Policy
    selector: Selector  # which endpoints the policy applies to, scope included
    ingress: tuple[CompiledRule, ...]
    egress: tuple[CompiledRule, ...]

    def rules(self, direction: str) -> tuple[CompiledRule, ...]:
        return self.ingress if direction == INGRESS else self.egress


#: Per tier in evaluation order: the tier and its policies in evaluation order.
Plan = tuple[tuple[Tier, tuple[CompiledPolicy, ...]], ...]


@dataclass(frozen=True)
class Plans:
    """The plans of one policy set: ``enforced`` (staged policies left out) and ``pending``
    (staged ``Set``/``Learn`` policies added, those a staged ``Delete`` removes left out)."""

    enforced: Plan
    pending: Plan
    has_staged: bool


#: Memo of :func:`compile_entity`'s selectors: (selector, has selector fields, namespaceSelector,
#: serviceAccounts, policy namespace) -> the combined selector.
SelectorMemo = dict[tuple[object, ...], Selector | None]


def compile_entity(er: EntityRule, policy: Policy, memo: SelectorMemo | None = None) -> CompiledEntity:
    """``er`` of a rule of ``policy`` compiled; ``memo`` shares the combined selectors of the
    entity rules that select the same peers (a policy set names each peer in many rules)."""
    scope = policy.namespace if er.has_selector_fields and er.namespace_selector is None else None
    if memo is None:
        positive = _positive(er, policy)
    else:
        key = (
            er.selector,
            er.has_selector_fields,
            er.namespace_selector,
            er.service_accounts,
            policy.namespace,
        )
        if key in memo:
            positive = memo[key]
        else:
            positive = memo[key] = _positive(er, policy)
    return CompiledEntity(er, positive, er.not_selector, scope, er.is_empty)


def _positive(er: EntityRule, policy: Policy) -> Selector | None:
    # rules.go getEndpointSelector: the namespace clause only when a selector-ish field is set
    # (rulebook C11).
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
    return and_(*parts) if parts else None


def describe_selection(er: EntityRule, scope: str | None) -> str:
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


def compile_policy(policy: Policy, memo: SelectorMemo | None = None) -> CompiledPolicy:
    """``policy`` compiled; ``memo``: see :func:`compile_entity`."""
    # Rulebook C9: the selector, limited to the policy's namespace (or its namespaceSelector),
    # and the serviceAccountSelector over the service account's labels.
    parts: list[Selector] = [policy.selector]
    if policy.namespace is not None:
        parts.append(Eq(NAMESPACE_LABEL, policy.namespace))
    elif policy.namespace_selector is not None:
        parts.append(to_namespace_scope(policy.namespace_selector))
    if policy.service_account_selector is not None:
        parts.append(policy.service_account_selector.prefixed(SERVICE_ACCOUNT_LABEL_PREFIX))

    def rules(items: tuple[Rule, ...]) -> tuple[CompiledRule, ...]:
        return tuple(
            CompiledRule(
                r, compile_entity(r.source, policy, memo), compile_entity(r.destination, policy, memo)
            )
            for r in items
        )

    return CompiledPolicy(policy, and_(*parts), rules(policy.ingress), rules(policy.egress))


def compile_plan(
    policies: Iterable[Policy],
    tiers: dict[str, Tier],
    version: CalicoVersion = LATEST,
    compile_one: Callable[[Policy], CompiledPolicy] = compile_policy,
) -> Plan:
    """Tiers in order (rulebook C1), each with its policies in order (rulebook C3, G8), the
    static tiers of ``version`` included even when empty (rulebook G2). doNotTrack and preDNAT
    policies are left out (rulebook C12). ``compile_one`` compiles one policy (a memo shares the
    policies two plans have in common)."""
    by_tier: dict[str, list[Policy]] = {t.name: [] for t in version.static_tiers}
    for p in policies:
        if p.do_not_track or p.pre_dnat:
            continue
        by_tier.setdefault(p.tier, []).append(p)
    plan = []
    for name, pols in by_tier.items():
        tier = tiers.get(name) or Tier(name, None, "Deny")
        ordered = sorted(pols, key=lambda p: policy_sort_key(p, version))
        plan.append((tier, tuple(compile_one(p) for p in ordered)))
    plan.sort(key=lambda entry: entry[0].sort_key)
    return tuple(plan)


def compile_plans(policy_set: PolicySet, version: CalicoVersion = LATEST) -> Plans:
    """The enforced and pending plans of ``policy_set`` (rulebook S1, S2) as ``version`` of
    Calico orders them. A policy in both plans is compiled once; without staged policies the
    two plans are one."""
    tiers = {t.name: t for t in BUILTIN_TIERS}
    tiers.update({t.name: t for t in version.static_tiers})
    tiers.update({t.name: t for t in policy_set.tiers})
    enforced = [p for p in policy_set.policies if not p.staged]
    deleted = {p.counterpart_key for p in policy_set.policies if p.staged and p.staged_action == "Delete"}
    pending = [p for p in enforced if p.key not in deleted] + [
        p for p in policy_set.policies if p.staged and p.staged_action in ("Set", "Learn")
    ]
    compiled: dict[int, CompiledPolicy] = {}
    memo: SelectorMemo = {}

    def compile_one(policy: Policy) -> CompiledPolicy:
        done = compiled.get(id(policy))
        if done is None:
            done = compiled[id(policy)] = compile_policy(policy, memo)
        return done

    enforced_plan = compile_plan(enforced, tiers, version, compile_one)
    has_staged = any(p.staged for p in policy_set.policies)
    pending_plan = compile_plan(pending, tiers, version, compile_one) if has_staged else enforced_plan
    return Plans(enforced_plan, pending_plan, has_staged)
