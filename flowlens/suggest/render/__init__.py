"""Rendering a :class:`~flowlens.suggest.synth.Plan` as manifests with evidence comments.

``kubernetes`` flavor (:mod:`.kubernetes`): ``networking.k8s.io/v1`` NetworkPolicy
(``StagedKubernetesNetworkPolicy`` with ``--staged``). ``calico`` flavor (:mod:`.calico`):
``projectcalico.org/v3`` NetworkPolicy in a tier of its own (with the Tier object),
GlobalNetworkSets for groups of external CIDRs, and optionally a GlobalNetworkPolicy baseline.
What both share — rule summaries, breadth, evidence comments, metadata, document order — is in
:mod:`.common`. Output is sorted and free of timestamps other than the evidence, so the same plan
always renders to the same bytes.
"""

from __future__ import annotations

from flowlens.suggest.model import Plan
from flowlens.suggest.render import calico, kubernetes
from flowlens.suggest.render.calico import calico_selector
from flowlens.suggest.render.common import Breadth, Rendered, RenderedRule, breadth

__all__ = ["Breadth", "Rendered", "RenderedRule", "breadth", "calico_selector", "render"]


def render(plan: Plan) -> Rendered:
    """All documents of ``plan``, grouped by namespace, plus the rules for the summary."""
    rules: list[RenderedRule] = []
    namespaces = []
    for ns in plan.namespaces:
        if plan.options.flavor == "calico":
            docs = calico.render_namespace(plan, ns, rules)
        else:
            docs = kubernetes.render_namespace(plan, ns, rules)
        namespaces.append((ns.namespace, tuple(docs)))
    return Rendered(tuple(calico.cluster_docs(plan)), tuple(namespaces), tuple(rules))
