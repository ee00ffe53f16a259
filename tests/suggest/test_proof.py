"""The proof on its own: beside or in place of the policies in force, unreproducible keys, limits."""

from __future__ import annotations

from pathlib import Path

import yaml

from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.proof import prove
from tests.suggest.helpers import make_store, reports_of

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
