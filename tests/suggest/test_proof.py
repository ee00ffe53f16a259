"""The proof on its own: beside or in place of the policies in force, unreproducible keys, limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from pathlib import Path

import pytest
import yaml

from flowlens.policy.inventory import load_inventory
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.edges import External
from flowlens.suggest.observed import Workload
from flowlens.suggest.pairs import pairs_to_check
from flowlens.suggest.proof import prove
from tests.suggest.helpers import edge_rows, make_store, pod_side, reports_of, shop_rows

LATER = dt.timedelta(minutes=5)
OPEN_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "legacy-open", "namespace": "shop"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
}
DENY_CART = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "GlobalNetworkPolicy",
    "metadata": {"name": "security.no-cart"},
    "spec": {
        "tier": "security",
        "order": 1,
        "selector": "app == 'cart'",
        "types": ["Ingress"],
        "ingress": [{"action": "Deny", "protocol": "TCP", "source": {"selector": "app == 'frontend'"}}],
    },
}
TIER = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "Tier",
    "metadata": {"name": "security"},
    "spec": {"order": 100},
}


def _write(path: Path, *docs: dict) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_replace_proves_the_suggestion_without_the_namespace_policies_in_force(tmp_path: Path) -> None:
    reports = reports_of(make_store(tmp_path / "store"))
    options = SuggestOptions(("shop",))
    s = suggest(reports, options)
    in_force = [_write(tmp_path / "open.yaml", OPEN_INGRESS)]
    beside = prove(reports, options, suggestion=s, policies=in_force)
    instead = prove(reports, options, suggestion=s, policies=in_force, replace=True)
    assert beside.broken == () and instead.broken == ()
    assert instead.pairs_open_after < beside.pairs_open_after


def test_a_key_the_policies_in_force_already_deny_is_unreproducible_not_broken(tmp_path: Path) -> None:
    reports = reports_of(make_store(tmp_path / "store"))
    options = SuggestOptions(("shop",))
    result = prove(
        reports,
        options,
        suggestion=suggest(reports, options),
        policies=[_write(tmp_path / "deny.yaml", TIER, DENY_CART)],
    )
    assert result.broken == ()
    assert any("frontend" in u and "cart" in u for u in result.unreproducible)


def test_the_closure_checks_at_most_the_pair_limit_and_always_the_same_pairs(tmp_path: Path) -> None:
    reports = reports_of(make_store(tmp_path / "store"))
    options = SuggestOptions(("shop",))
    s = suggest(reports, options)
    full = prove(reports, options, suggestion=s)
    first = prove(reports, options, suggestion=s, max_pairs=5)
    again = prove(reports, options, suggestion=s, max_pairs=5)
    assert full.pairs_checked == full.pairs_total > 5
    assert (first.pairs_checked, first.pairs_total) == (5, full.pairs_total)
    assert first.closed_pairs == again.closed_pairs


def _pairs_by_sorting_them_all(
    workloads: list[Workload], targets: set[str], observed: set[tuple[object, object]], max_pairs: int
) -> tuple[int, list[tuple[Workload, Workload]]]:
    """The closure's pair sample by its definition: every pair with a side in ``targets``, sorted
    by (not observed, SHA-256 of the pair's text), the first ``max_pairs`` kept, in pair order."""
    pairs = [(a, b) for a in workloads for b in workloads if a != b and targets & {a.namespace, b.namespace}]
    if len(pairs) <= max_pairs:
        return len(pairs), pairs
    text = {w: f"{w.namespace}|{w.selector}" for w in workloads}
    ranked = sorted(
        pairs,
        key=lambda p: (p not in observed, hashlib.sha256(f"{text[p[0]]}|{text[p[1]]}".encode()).digest()),
    )
    return len(pairs), sorted(ranked[:max_pairs])


def test_the_closure_samples_the_pairs_its_definition_says() -> None:
    rng = random.Random(7)
    for _ in range(150):
        workloads = sorted(
            {
                Workload(f"ns{rng.randrange(5)}", (("app", f"a{rng.randrange(25)}"),), "label-keys")
                for _ in range(rng.randrange(1, 45))
            }
        )
        targets = {f"ns{i}" for i in range(5) if rng.random() < 0.4}
        every = [(a, b) for a in workloads for b in workloads if a != b]
        observed: set[tuple[object, object]] = set(rng.sample(every, min(len(every), rng.randrange(0, 200))))
        observed.add((workloads[0], External("net", None, "pub", "192.0.2.1")))  # not a workload pair
        max_pairs = rng.choice([0, 1, 5, 40, 400, 5000])
        expected = _pairs_by_sorting_them_all(workloads, targets, observed, max_pairs)
        assert pairs_to_check(workloads, targets, observed, max_pairs) == expected


def _labels_reversed(row: dict) -> dict:
    out = dict(row)
    for side in ("source_labels", "dest_labels"):
        labels = out.get(side)
        if labels:
            out[side] = list(reversed(list(labels.items() if isinstance(labels, dict) else labels)))
    return out


def test_a_label_set_in_any_key_order_is_one_workload_and_its_connections_all_count(tmp_path: Path) -> None:
    # Felix writes a pod's labels in any order: each record here comes again five minutes later,
    # in one store with its labels in the same order, in the other reversed.
    rows = shop_rows()
    assert any(len(r.get("source_labels") or ()) > 1 for r in rows)

    def later(row: dict) -> dict:
        return {**row, "start_time": row["start_time"] + LATER, "end_time": row["end_time"] + LATER}

    stores = {
        "ordered": rows + [later(r) for r in rows],
        "shuffled": rows + [_labels_reversed(later(r)) for r in rows],
    }
    options = SuggestOptions(("shop",))
    results = {}
    for name, store_rows in stores.items():
        reports = reports_of(make_store(tmp_path / name, store_rows))
        results[name] = (len(reports), prove(reports, options, suggestion=suggest(reports, options)))
    (ordered_reports, ordered), (shuffled_reports, shuffled) = results["ordered"], results["shuffled"]
    assert shuffled_reports == ordered_reports
    assert (shuffled.replayed, shuffled.connections) == (ordered.replayed, ordered.connections)
    allowed = sum(
        r.get("num_flows_started") or 0
        for r in stores["ordered"]
        if r["action"] == "allow" and r["reporter"] in ("src", "dst")
    )
    assert ordered.connections == allowed


def _pod(name: str, app: str, template: str, account: str, ip: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"app": app, "pod-template-hash": template},
            "generateName": name[: name.rindex("-") + 1],
        },
        "spec": {"serviceAccountName": account, "containers": [{"name": app, "image": app}]},
        "status": {"podIP": ip, "phase": "Running"},
    }


@pytest.mark.parametrize("rolled_out", [False, True])
def test_calico_peers_name_a_service_account_only_when_the_inventory_knows_every_logged_pod(
    tmp_path: Path, rolled_out: bool
) -> None:
    # The cart was rolled out while the flows were logged: the inventory, taken after, knows only
    # the new pods. The old ones could have run as another account, so the peer stays a selector.
    rows = edge_rows(
        pod_side("source", "frontend", "shop", template="aaaa1"),
        pod_side("dest", "cart", "shop", template="new22"),
        7070,
    )
    if rolled_out:
        rows += edge_rows(
            pod_side("source", "frontend", "shop", template="aaaa1"),
            pod_side("dest", "cart", "shop", template="old11"),
            7070,
            minutes=60,
        )
    inventory_file = tmp_path / "inventory.yaml"
    inventory_file.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    _pod("frontend-aaaa1-x1", "frontend", "aaaa1", "frontend", "10.0.0.1"),
                    _pod("cart-new22-y1", "cart", "new22", "cart", "10.0.0.2"),
                ],
            }
        )
    )
    inventory = load_inventory([inventory_file])
    reports = reports_of(make_store(tmp_path / "store", rows))
    options = SuggestOptions(("shop",), flavor="calico")
    suggestion = suggest(reports, options, inventory)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(suggestion.stream())}
    to_cart = next(
        r["destination"]
        for r in docs["flowlens.frontend"]["spec"]["egress"]
        if r["destination"].get("selector") == "app == 'cart'"
    )
    assert to_cart.get("serviceAccounts") == (None if rolled_out else {"names": ["cart"]})
    result = prove(reports, options, suggestion=suggestion, inventory=inventory)
    assert result.broken == ()
    assert result.replayed >= 2
