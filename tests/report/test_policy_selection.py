"""Default deny from policies: the share of inventory workloads that enforced policies select."""

from __future__ import annotations

from pathlib import Path

from flowlens.policy.inventory import load_inventory
from flowlens.policy.manifests import load_policies
from flowlens.report.coverage import policy_selection

INVENTORY = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {team: web}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ops}}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-abc-1, namespace: shop, generateName: web-abc-, labels: {app: web}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.1}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-abc-2, namespace: shop, generateName: web-abc-, labels: {app: web}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.2}
- apiVersion: v1
  kind: Pod
  metadata: {name: db-0, namespace: shop, labels: {app: db}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.3}
- apiVersion: v1
  kind: Pod
  metadata: {name: tool-0, namespace: ops, labels: {app: tool}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.4}
"""

POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: would-select-everything}
spec:
  selector: all()
  types: [Ingress, Egress]
"""


def test_selection_counts_workloads_per_namespace_and_direction(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "pol.yaml").write_text(POLICIES)
    selection = policy_selection(
        load_policies([tmp_path / "pol.yaml"]), load_inventory([tmp_path / "inv.yaml"])
    )
    shop, ops = selection["shop"], selection["ops"]
    # shop: web-abc-* (2 pods, one workload) and db-0; both selected for ingress, only db for egress.
    assert (shop.workloads, shop.ingress_selected, shop.egress_selected) == (2, 2, 1)
    assert shop.egress_share == 0.5
    # ops: nothing selects tool-0 (the staged policy does not count).
    assert (ops.workloads, ops.ingress_selected, ops.egress_selected) == (1, 0, 0)
    assert ops.ingress_share == 0.0
