"""Calico versions: where Calico v3.29-v3.31 and v3.32+ evaluate policies differently.

Owns :class:`CalicoVersion` (parsed from ``--calico-version``, detected from the manifests or
from the hits in the store) and :func:`for_version`, which keeps the policies a Calico version
enforces. The differences (rulebook G1, G8):

* which cluster policy kinds Calico enforces and in which static tiers: AdminNetworkPolicy in
  ``adminnetworkpolicy`` from v3.29, BaselineAdminNetworkPolicy in ``baselineadminnetworkpolicy``
  from v3.30, both removed in v3.32, which enforces ClusterNetworkPolicy in ``kube-admin`` and
  ``kube-baseline`` instead;
* how two policies of one tier with the same order are ordered: by policy name up to v3.31, by
  ``name/namespace/kind`` from v3.32 (:func:`policy_sort_key`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flowlens.errors import UsageError
from flowlens.formats.hits import PolicyHit, to_legacy
from flowlens.policy.model import (
    ANP_TIER,
    BANP_TIER,
    DEFAULT_TIER,
    DEFAULT_TIER_ORDER,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    Policy,
    PolicySet,
    Tier,
)
from flowlens.schema import SHORT_KINDS

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?\+?$")

#: Calico's own kind names, which its v3.32+ tie-break compares (``name/namespace/kind``).
_CALICO_KIND_NAMES = {"ClusterNetworkPolicy": "KubernetesClusterNetworkPolicy"}


@dataclass(frozen=True, order=True)
class CalicoVersion:
    """A Calico open-source minor version (``3.31``); only the minor version changes evaluation."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> CalicoVersion:
        """``3.31``, ``v3.32.1`` or ``3.32+``; a usage error names what is accepted."""
        match = _VERSION.match(text.strip())
        if match is None:
            raise UsageError(f"--calico-version {text!r}: give a Calico version such as 3.31 or 3.32")
        version = cls(int(match.group(1)), int(match.group(2)))
        if version.major != 3:
            raise UsageError(
                f"--calico-version {text!r}: flowlens models Calico 3.x (tiers from 3.29); use e.g. 3.31 or 3.32"
            )
        return version

    @property
    def modern(self) -> bool:
        """v3.32 or later: ClusterNetworkPolicy, the ``name/namespace/kind`` tie-break."""
        return (self.major, self.minor) >= (3, 32)

    def enforces(self, kind: str) -> bool:
        """Whether this version enforces policies of ``kind`` (the cluster kinds vary, rulebook G1)."""
        if kind == "ClusterNetworkPolicy":
            return self.modern
        if kind == "AdminNetworkPolicy":
            return (3, 29) <= (self.major, self.minor) < (3, 32)
        if kind == "BaselineAdminNetworkPolicy":
            return (3, 30) <= (self.major, self.minor) < (3, 32)
        return True

    @property
    def static_tiers(self) -> tuple[Tier, ...]:
        """The tiers Calico itself creates at this version, guardrail tiers first and last."""
        if self.modern:
            admin, baseline = KUBE_ADMIN_TIER, KUBE_BASELINE_TIER
        else:
            admin, baseline = ANP_TIER, BANP_TIER
        tiers = [Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, "Deny")]
        if self.modern or self.minor >= 29:
            tiers.insert(0, Tier(admin, 1000.0, "Pass"))
        if self.modern or self.minor >= 30:
            tiers.append(Tier(baseline, 10_000_000.0, "Pass"))
        return tuple(tiers)

    @property
    def label(self) -> str:
        return "Calico v3.32+" if self.modern else f"Calico v{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


#: What flowlens assumes when nothing tells: the current Calico behaviour.
LATEST = CalicoVersion(3, 32)
LEGACY = CalicoVersion(3, 31)


def detect_from_policies(policy_set: PolicySet) -> CalicoVersion | None:
    """v3.32 when the manifests hold ClusterNetworkPolicies, v3.31 when they hold only the admin
    network policies, None when they hold neither (or both: the newer kind wins, see
    :func:`for_version`)."""
    kinds = {p.kind for p in policy_set.policies}
    if "ClusterNetworkPolicy" in kinds:
        return LATEST
    if kinds & {"AdminNetworkPolicy", "BaselineAdminNetworkPolicy"}:
        return LEGACY
    return None


def detect_from_hits(hits: Iterable[tuple[str, str]]) -> CalicoVersion | None:
    """The version the recorded hits show, from (tier, kind) pairs: the ``kube-admin`` and
    ``kube-baseline`` tiers or ClusterNetworkPolicy hits mean v3.32+, the ``adminnetworkpolicy``
    tiers or admin-network-policy hits v3.29-v3.31; None when the hits show neither."""
    modern = legacy = False
    for tier, kind in hits:
        if tier in (KUBE_ADMIN_TIER, KUBE_BASELINE_TIER) or kind == "ClusterNetworkPolicy":
            modern = True
        elif tier in (ANP_TIER, BANP_TIER) or kind in ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy"):
            legacy = True
    if modern:
        return LATEST
    return LEGACY if legacy else None


def for_version(policy_set: PolicySet, version: CalicoVersion | None) -> tuple[PolicySet, CalicoVersion]:
    """The policies ``version`` enforces (the version detected from the manifests when None),
    with a note for each cluster policy that version ignores (rulebook G1)."""
    chosen = version or detect_from_policies(policy_set) or LATEST
    kept: list[Policy] = []
    notes: list[str] = []
    for policy in policy_set.policies:
        if chosen.enforces(policy.kind):
            kept.append(policy)
            continue
        other = "3.32 or later" if policy.kind == "ClusterNetworkPolicy" else "3.29-3.31"
        if policy.kind == "BaselineAdminNetworkPolicy":
            other = "3.30-3.31"
        notes.append(
            f"{policy.origin}: {policy.display} is not enforced by {chosen.label}; it is not evaluated "
            f"(Calico {other} enforces it: pass --calico-version to choose)"
        )
    if len(kept) == len(policy_set.policies):
        return policy_set, chosen
    return dataclasses.replace(
        policy_set, policies=tuple(kept), notes=policy_set.notes + tuple(notes)
    ), chosen


def policy_sort_key(policy: Policy, version: CalicoVersion) -> tuple[float, str]:
    """Where ``policy`` runs in its tier (rulebook C3, G8): by order (none = last), then, for equal
    orders, by name up to v3.31 and by ``name/namespace/kind`` from v3.32."""
    if version.modern:
        kind = _CALICO_KIND_NAMES.get(policy.kind, policy.kind)
        return (policy.order, f"{policy.name}/{policy.namespace or ''}/{kind}")
    return (policy.order, legacy_name(policy))


def legacy_name(policy: Policy) -> str:
    """The name Calico up to v3.31 knows a policy by (and writes in flow logs): ``tier.name``,
    ``namespace/knp.default.name``, ``kanp.adminnetworkpolicy.name`` ..."""
    hit = PolicyHit(0, policy.tier, policy.kind, policy.namespace, policy.name, "allow", 0)
    return to_legacy(hit).split("|")[2]


def detect_from_store(engine: Any) -> CalicoVersion | None:
    """The version the enforced hits recorded in the store show (see :func:`detect_from_hits`),
    read through the ``policy-hits`` query of ``engine`` (a :class:`flowlens.engine.Engine`)."""
    rows = engine.run("policy-hits", {"namespace": None, "trace": "enforced"}).to_pylist()
    pairs = []
    for row in rows:
        short, sep, _ = str(row.get("policy") or "").partition(":")
        pairs.append((str(row.get("tier") or ""), SHORT_KINDS.get(short, "") if sep else ""))
    return detect_from_hits(pairs)
