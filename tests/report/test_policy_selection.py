"""Default deny from policies: the share of inventory workloads that enforced policies select."""

from __future__ import annotations

from pathlib import Path

from flowlens.policy.inventory import load_inventory
from flowlens.policy.manifests import load_policies
from flowlens.report.coverage import policy_selection
from tests.report.helpers import INVENTORY, POLICIES


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
