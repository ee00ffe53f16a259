"""Cluster guardrail suggestions (``flowlens suggest --cluster``), proven by replay.

Owns the library side of the cluster layer a platform team sets above the namespaces' own
policies: :func:`suggest_cluster` reads the traffic of every namespace
(:mod:`~flowlens.suggest.cluster.observe`), proposes an Admin and a Baseline layer
(:mod:`~flowlens.suggest.cluster.synth`), renders them as ClusterNetworkPolicy or as Calico
GlobalNetworkPolicy in tiers (:mod:`~flowlens.suggest.cluster.render`), and proves them by
replaying every recorded flow of the window together with the policies in force
(:mod:`~flowlens.suggest.cluster.proof`), dropping what would break recorded traffic until
nothing does. Sources that look like scans or probes are never legitimised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlens.errors import UsageError
from flowlens.policy.inventory import Inventory
from flowlens.policy.manifests import policies_from_objects
from flowlens.policy.model import ANP_TIER, BANP_TIER, KUBE_ADMIN_TIER, KUBE_BASELINE_TIER, PolicySet
from flowlens.policy.versions import LATEST, CalicoVersion, detect_from_policies
from flowlens.suggest.cluster.observe import Observed, observe
from flowlens.suggest.cluster.proof import MAX_REPAIRS, ClusterProof, prove_cluster, repair
from flowlens.suggest.cluster.render import render
from flowlens.suggest.cluster.synth import ClusterPlan, synthesise
from flowlens.suggest.observed import DEFAULT_LABEL_KEYS, Report, observed_span
from flowlens.suggest.yamlout import Document, dump_documents, plain

if TYPE_CHECKING:
    from flowlens.engine import Engine

FLAVORS = ("kubernetes", "calico")
FILES = {"Admin": "guardrails-admin.yaml", "Baseline": "guardrails-baseline.yaml"}
_TIER = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

__all__ = ["FILES", "FLAVORS", "ClusterOptions", "ClusterSuggestion", "load_window", "suggest_cluster"]


@dataclass(frozen=True)
class ClusterOptions:
    """What ``suggest --cluster`` writes: the flavor, the Calico tiers of the two layers
    (``calico`` flavor; None: the tiers Calico creates for its guardrails), the label keys that
    name workloads, whether system namespaces get a Baseline, and the Calico version."""

    flavor: str = "kubernetes"
    label_keys: tuple[str, ...] = DEFAULT_LABEL_KEYS
    admin_tier: str | None = None
    baseline_tier: str | None = None
    include_system: bool = False
    calico_version: CalicoVersion | None = None


@dataclass(frozen=True)
class ClusterSuggestion:
    """The proven guardrails: the plan, its documents (layer by layer), the proof, and how many
    guardrails or directions the proof made the synthesis drop."""

    plan: ClusterPlan
    documents: tuple[tuple[str, Document], ...]  # (layer, document)
    header: tuple[str, ...]
    proof: ClusterProof
    repairs: int
    observed: Observed

    def files(self) -> dict[str, str]:
        """File name -> YAML: one file per layer that has guardrails."""
        out = {}
        for layer, name in FILES.items():
            docs = [d for lay, d in self.documents if lay == layer]
            if docs:
                out[name] = dump_documents(docs, (*self.header, f"{layer} layer", *self._notes()))
        return out

    def stream(self) -> str:
        files = self.files()
        return "".join(files[name] for name in (FILES["Admin"], FILES["Baseline"]) if name in files)

    def objects(self) -> list[dict[str, Any]]:
        return [plain(d.body) for _, d in self.documents]

    def _notes(self) -> list[str]:
        lines = [f"note: {n}" for n in self.plan.notes]
        if self.plan.held_back:
            lines.append("held back as scans or probes (never made into a rule; the guardrails deny them):")
            lines += [f"  {h}" for h in self.plan.held_back]
        if self.plan.left_out:
            lines.append("left to the namespaces (the proof showed they would break recorded traffic):")
            lines += [f"  {x}" for x in self.plan.left_out]
        return lines


def tiers_for(options: ClusterOptions, version: CalicoVersion) -> dict[str, str]:
    """The Calico tiers of the Admin and Baseline layers (``calico`` flavor)."""
    admin = options.admin_tier or (KUBE_ADMIN_TIER if version.modern else ANP_TIER)
    baseline = options.baseline_tier or (KUBE_BASELINE_TIER if version.modern else BANP_TIER)
    for flag, tier in (("--admin-tier", admin), ("--baseline-tier", baseline)):
        if not _TIER.match(tier) or tier == "default":
            raise UsageError(f"{flag} {tier!r}: give a tier name (a DNS label) other than default")
    return {"Admin": admin, "Baseline": baseline}


def _host_nets(policy_set: PolicySet) -> dict[str, tuple[str, ...]]:
    """Addresses of the host endpoints in force, by host endpoint name and by node."""
    out: dict[str, tuple[str, ...]] = {}
    for hep in policy_set.host_endpoints:
        nets = tuple(f"{ip}/{128 if ':' in ip else 32}" for ip in hep.expected_ips)
        if nets:
            out[hep.name] = nets
            if hep.node:
                out[hep.node] = tuple(sorted({*out.get(hep.node, ()), *nets}))
    return out


def load_window(engine: Engine) -> tuple[list[Report], list[dict[str, Any]]]:
    """What ``suggest --cluster`` reads from the engine's window: the observed report groups of
    every namespace with pods (system namespaces included), and the distinct flow keys the proof
    replays."""
    from flowlens.suggest import load_reports, namespaces_in_window

    namespaces = namespaces_in_window(engine, include_system=True)
    if not namespaces:
        raise UsageError("no namespace has pods in the window; widen --since/--until")
    reports = load_reports(engine, namespaces)
    keys = engine.run("policy-flow-keys", {"namespace": None, "since": None, "until": None}).to_pylist()
    return reports, keys


def suggest_cluster(
    reports: Sequence[Report],
    key_rows: Sequence[Mapping[str, Any]],
    options: ClusterOptions,
    in_force: PolicySet | None = None,
    inventory: Inventory | None = None,
) -> ClusterSuggestion:
    """Propose, render and prove the cluster guardrails of the window whose ``reports``
    (``suggest-edges`` rows) and ``key_rows`` (``policy-flow-keys`` rows) are given."""
    if options.flavor not in FLAVORS:
        raise UsageError(f"--flavor must be one of {', '.join(FLAVORS)}, not {options.flavor!r}")
    in_force = in_force or PolicySet()
    version = options.calico_version or detect_from_policies(in_force) or LATEST
    if options.flavor == "kubernetes" and not version.modern:
        raise UsageError(
            f"ClusterNetworkPolicy needs Calico v3.32 or later ({version.label} was chosen); "
            "use --flavor calico for GlobalNetworkPolicies in the admin network policy tiers"
        )
    tiers = tiers_for(options, version)
    observed = observe(reports, options.label_keys)
    plan = synthesise(observed, include_system=options.include_system, host_nets=_host_nets(in_force))
    repairs = 0
    rows = [dict(r) for r in key_rows]
    while True:
        documents = render(plan, options.flavor, tiers)
        guard_set = policies_from_objects([plain(d.body) for _, d in documents], "<guardrails>")
        proof = prove_cluster(
            rows, in_force, guard_set, inventory, held_keys=observed.held_keys, calico_version=version
        )
        if proof.ok or repairs >= MAX_REPAIRS:
            break
        repaired = repair(plan, proof)
        if repaired is None:
            break
        plan, repairs = repaired, repairs + 1
    layered = tuple(documents)
    span = observed_span(reports)
    target = (
        "ClusterNetworkPolicy (Calico v3.32+)"
        if options.flavor == "kubernetes"
        else (
            f"Calico GlobalNetworkPolicy in tiers {tiers['Admin']} and {tiers['Baseline']} ({version.label})"
        )
    )
    header = (
        "generated by flowlens suggest --cluster: cluster guardrails from the traffic of every namespace",
        f"{target}; {span}; label keys: {', '.join(options.label_keys)}",
        f"proof: {proof.keys:,} flow keys ({proof.records:,} records) replayed with the policies in force: "
        f"{len(proof.broken)} recorded allowed connections denied, {len(proof.held)} held back on purpose",
    )
    return ClusterSuggestion(plan, layered, header, proof, repairs, observed)
