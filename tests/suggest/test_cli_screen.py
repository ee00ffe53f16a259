"""The command's screening options, flowlens.yaml's suggest: section, --plan, and the exit codes
with held-back edges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flowlens.cli import app
from flowlens.errors import FlowlensError
from tests.factories import T0
from tests.suggest.helpers import make_store, pod_side, shop_rows
from tests.suggest.helpers.probes import probe_rows

SCAN = "shop/app=frontend->shop/app=cart@tcp/7071-7090"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, FlowlensError):
        # what flowlens.cli.main would print on stderr
        return (
            result.exception.exit_code,
            result.stdout,
            f"{result.stderr}flowlens: error: {result.exception}",
        )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rows = shop_rows() + probe_rows(
        pod_side("source", "frontend", "shop"), pod_side("dest", "cart", "shop"), range(7071, 7091), at=T0
    )
    return make_store(tmp_path / "store", rows)


def _cart_ports(out: str) -> list[object]:
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out)}
    return [rule.get("ports") for rule in docs["flowlens.cart"]["spec"]["ingress"]]


def test_a_held_back_scan_is_listed_and_does_not_change_the_exit_code(store: Path, tmp_path: Path) -> None:
    code, out, err = _invoke(
        "suggest", "--store", str(store), "-n", "shop", "--summary-json", str(tmp_path / "s.json")
    )
    assert code == 0, err
    assert f"      admit: {SCAN}" in err
    assert "20 ports in 5 min, 1 connection each, 120 bytes per connection: looks like a port scan" in err
    assert _cart_ports(out) == [[{"protocol": "TCP", "port": 7070}]]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["ok"] is True and [h["admit"] for h in summary["held_back"]] == [SCAN]


def test_admit_and_admit_held_keep_the_scan_on_purpose(store: Path, tmp_path: Path) -> None:
    for extra in (["--admit", SCAN], ["--admit-held"]):
        code, out, err = _invoke("suggest", "--store", str(store), "-n", "shop", *extra)
        assert code == 0, err
        assert _cart_ports(out) == [[{"protocol": "TCP", "port": 7070, "endPort": 7090}]]
        assert "ADMITTED (held back, kept on purpose)" in err
        assert "# ADMITTED: held back (20 ports in 5 min" in out


def test_hold_back_none_and_a_high_scan_threshold_admit_the_scan(store: Path) -> None:
    for extra in (["--hold-back", "none"], ["--scan-ports", "21", "--hold-back", "port-scan"]):
        code, out, err = _invoke("suggest", "--store", str(store), "-n", "shop", *extra)
        assert code == 0, err
        assert "held back 1 groups" not in err
        assert _cart_ports(out) == [[{"protocol": "TCP", "port": 7070, "endPort": 7090}]]


@pytest.mark.parametrize(
    "extra",
    [
        ["--admit", "shop/app=frontend"],
        ["--hold-back", "scans"],
        ["--denied-share", "2"],
        ["--plan", "--staged"],
        ["--plan", "--check", "."],
    ],
)
def test_bad_screening_options_are_usage_errors(store: Path, extra: list[str]) -> None:
    code, _, err = _invoke("suggest", "--store", str(store), "-n", "shop", *extra)
    assert code == 2, err


def test_the_config_file_sets_defaults_and_the_command_line_wins(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "flowlens.yaml"
    config.write_text(yaml.safe_dump({"suggest": {"scan-ports": 30, "min-days": 0, "admit": []}}))
    monkeypatch.setenv("FLOWLENS_CONFIG", str(config))
    code, out, err = _invoke("suggest", "--store", str(store), "-n", "shop", "--hold-back", "port-scan")
    assert code == 0, err
    assert _cart_ports(out) == [[{"protocol": "TCP", "port": 7070, "endPort": 7090}]]  # 20 ports < 30
    code, out, err = _invoke(
        "suggest", "--store", str(store), "-n", "shop", "--hold-back", "port-scan", "--scan-ports", "10"
    )
    assert code == 0, err
    assert _cart_ports(out) == [[{"protocol": "TCP", "port": 7070}]]
    config.write_text(yaml.safe_dump({"suggest": {"admit": [SCAN]}}))
    code, out, err = _invoke("suggest", "--store", str(store), "-n", "shop")
    assert code == 0 and _cart_ports(out) == [[{"protocol": "TCP", "port": 7070, "endPort": 7090}]]
    for bad in ({"scan-port": 3}, {"scan-ports": -1}, {"denied-share": "half"}, {"admit": [3]}, []):
        config.write_text(yaml.safe_dump({"suggest": bad}))
        code, _, err = _invoke("suggest", "--store", str(store), "-n", "shop")
        assert code == 2 and str(config) in err, (bad, err)


def test_plan_writes_the_staged_policies_the_enforced_ones_and_the_rollout(
    store: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = _invoke(
        "suggest",
        "--store",
        str(store),
        "-n",
        "shop",
        "-n",
        "monitoring",
        "--plan",
        "--out",
        str(out_dir),
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert code == 0, err
    assert out == ""
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "monitoring.yaml",
        "rollout.md",
        "shop.yaml",
        "staged",
    ]
    staged = list(yaml.safe_load_all((out_dir / "staged" / "shop.yaml").read_text()))
    assert {d["kind"] for d in staged} == {"StagedKubernetesNetworkPolicy"}
    assert {d["kind"] for d in yaml.safe_load_all((out_dir / "shop.yaml").read_text())} == {"NetworkPolicy"}
    plan = (out_dir / "rollout.md").read_text()
    assert plan.startswith("# Rollout plan: monitoring, shop (kubernetes)")
    assert f"kubectl apply -f {out_dir}/staged/" in plan
    assert "## Step 2: enforce monitoring" in plan and "## Step 3: enforce shop" in plan
    assert "(held back: port-scan)" in plan
    rollout = json.loads((tmp_path / "s.json").read_text())["rollout"]
    assert [s["title"] for s in rollout["steps"]][1:] == ["enforce monitoring", "enforce shop"]
    assert rollout["steps"][0]["effect"]["denied_keys"] == 0
    assert rollout["steps"][0]["pending"]["denied_keys"] == sum(
        s["effect"]["denied_keys"] for s in rollout["steps"]
    )


def test_plan_without_out_goes_to_stderr_and_stdout_stays_yaml(store: Path) -> None:
    code, out, err = _invoke("suggest", "--store", str(store), "-n", "shop", "--plan")
    assert code == 0, err
    assert "# Rollout plan: shop (kubernetes)" in err
    assert all(d["kind"] == "NetworkPolicy" for d in yaml.safe_load_all(out))


def test_check_lists_held_back_traffic_its_policies_deny_and_exits_0(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    code, _, err = _invoke("suggest", "--store", str(store), "-n", "shop", "--out", str(folder))
    assert code == 0, err
    code, _, err = _invoke("suggest", "--store", str(store), "-n", "shop", "--check", str(folder))
    assert code == 0, err
    assert "would be denied: shop/frontend-5d8f7b9c6-* -> shop/cart-5d8f7b9c6-* tcp/7071-7090" in err
    assert "(held back: port-scan)" in err
