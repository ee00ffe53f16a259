"""Writing files safely and the flowlens suggest command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flowlens.errors import UsageError
from flowlens.suggest import validate_namespace, write_files
from tests.helpers import run_cli
from tests.suggest.helpers import make_store


def test_files_cannot_be_written_outside_the_chosen_folder(tmp_path: Path) -> None:
    for name in ("../evil.yaml", "a/b.yaml", "..", ""):
        with pytest.raises(UsageError):
            write_files({name: "x"}, tmp_path / "out")
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "link.yaml").symlink_to(tmp_path / "target.yaml")
    with pytest.raises(UsageError):
        write_files({"link.yaml": "x"}, tmp_path / "out")
    assert not (tmp_path / "target.yaml").exists()
    assert not (tmp_path / "evil.yaml").exists()


def test_namespace_names_are_validated() -> None:
    assert validate_namespace("shop-1") == "shop-1"
    for bad in ("../etc", "Shop", "a/b", "x" * 64, "-a", ""):
        with pytest.raises(UsageError):
            validate_namespace(bad)


def test_the_command_writes_clean_yaml_to_stdout_and_the_summary_to_stderr(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    code, out, err = run_cli(
        "suggest",
        "--store",
        str(store),
        "-n",
        "shop",
        "--summary-json",
        str(tmp_path / "s.json"),
        "--validate",
    )
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["metadata"]["name"] == "allow-dns"
    assert "proof: replayed" in err and "proof" not in out
    assert "schema: every emitted object is valid" in err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["ok"] is True
    assert summary["proof"]["broken"] == []
    assert summary["proof"]["workload_pairs_open_after"] < summary["proof"]["workload_pairs_open_before"]
    assert summary["broad_rules"]


def test_out_writes_one_file_per_namespace(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    code, out, err = run_cli(
        "suggest",
        "--store",
        str(store),
        "-n",
        "shop",
        "-n",
        "monitoring",
        "--flavor",
        "calico",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    assert out == ""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_cluster.yaml",
        "monitoring.yaml",
        "shop.yaml",
    ]


def test_check_fails_with_exit_10_when_observed_traffic_would_be_denied(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    folder = tmp_path / "policies"
    code, _, err = run_cli("suggest", "--store", str(store), "-n", "shop", "--out", str(folder))
    assert code == 0, err
    code, _, err = run_cli("suggest", "--store", str(store), "-n", "shop", "--check", str(folder))
    assert code == 0, err
    text = (folder / "shop.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d["metadata"]["name"] != "flowlens.cart"]
    (folder / "shop.yaml").write_text(yaml.safe_dump_all(docs))
    code, _, err = run_cli("suggest", "--store", str(store), "-n", "shop", "--check", str(folder))
    assert code == 10
    assert "BROKEN shop/frontend-5d8f7b9c6-* -> shop/cart-5d8f7b9c6-* tcp/7070 (ingress)" in err


def test_all_namespaces_skips_system_namespaces(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    code, out, err = run_cli("suggest", "--store", str(store), "--all-namespaces")
    assert code == 0, err
    namespaces = {d["metadata"]["namespace"] for d in yaml.safe_load_all(out)}
    assert namespaces == {"monitoring", "shop"}
    code, out, err = run_cli("suggest", "--store", str(store), "--all-namespaces", "--include-system")
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(out)} == {
        "kube-system",
        "monitoring",
        "shop",
    }


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    assert run_cli("suggest", "--store", str(store)).code == 2
    assert run_cli("suggest", "--store", str(store), "-n", "Bad_NS").code == 2
    assert run_cli("suggest", "--store", str(store), "-n", "shop", "--flavor", "cilium").code == 2


def test_a_namespace_without_flows_in_the_window_gets_no_default_deny(tmp_path: Path) -> None:
    # A default deny suggested from no evidence would cut off whatever runs there: refused.
    store = make_store(tmp_path / "store")
    folder = tmp_path / "out"
    for args in (
        ["-n", "shop", "-n", "nothing-here"],
        ["-n", "shop", "--since", "2000-01-01", "--until", "2000-01-02"],
    ):
        code, out, err = run_cli("suggest", "--store", str(store), *args, "--out", str(folder))
        assert code == 2, err
        assert "no flows touch" in err and "cut off whatever runs there" in err
        assert out == "" and not folder.exists()
    # the namespace's own policies can still be checked against a window without its flows
    code, _, err = run_cli("suggest", "--store", str(store), "-n", "shop", "--out", str(folder))
    assert code == 0, err
    code, _, err = run_cli("suggest", "--store", str(store), "-n", "nothing-here", "--check", str(folder))
    assert code == 0, err


def test_left_out_edges_of_one_peer_are_one_line_with_their_ports_as_ranges() -> None:
    from flowlens.suggest.model import LeftOut, left_out_groups

    def left(port: str, connections: int = 1, peer: str = "from app=scanner (shop)") -> LeftOut:
        return LeftOut("shop", "ingress", "app=db", peer, port, connections, "denied")

    items = [left(f"tcp/{p}") for p in (25, 21, 22, 23, 8080, 443)] + [left("udp/53"), left("icmp")]
    items.append(left("tcp/5432", 7, peer="from app=api (shop)"))
    groups = left_out_groups(items)
    assert [(x.peer, ports, x.connections) for x, ports in groups] == [
        ("from app=scanner (shop)", "icmp, tcp/21-23, tcp/25, tcp/443, tcp/8080, udp/53", 8),
        ("from app=api (shop)", "tcp/5432", 7),
    ]
