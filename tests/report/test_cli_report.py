"""flowlens report on the command line: output streams, options and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowlens.cli import app
from tests.report.stores import shop_store
from tests.report.test_policy_selection import INVENTORY, POLICIES


def _invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["report", *args], env=env)


def test_report_prints_the_folder_on_stdout_and_a_summary_on_stderr(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    reports = tmp_path / "reports"
    result = _invoke(
        "--store", str(tmp_path / "store"), "--reports", str(reports), "--window", "day", "--at", "2026-11-25"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(reports / "2026-11-25")
    assert "score 60.7" in result.stderr
    assert sorted(p.name for p in (reports / "2026-11-25").iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
        "state.json",
    ]


def test_the_store_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    result = _invoke(
        "--reports",
        str(tmp_path / "r"),
        "--since",
        "24h",
        "--until",
        "2026-11-26T00:00:00Z",
        "--format",
        "json",
        env={"FLOWLENS_STORE": str(tmp_path / "store")},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "last-24h-20261126T0000Z" / "report.json").read_text())
    assert doc["summary"]["records"] == 15


def test_policies_and_inventory_add_the_selected_share_per_namespace(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "pol.yaml").write_text(POLICIES)
    result = _invoke(
        "--store",
        str(tmp_path / "store"),
        "--reports",
        str(tmp_path / "r"),
        "--window",
        "day",
        "--at",
        "2026-11-25",
        "--format",
        "json",
        "--policies",
        str(tmp_path / "pol.yaml"),
        "--inventory",
        str(tmp_path / "inv.yaml"),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "2026-11-25" / "report.json").read_text())
    shop = next(n for n in doc["namespaces"] if n["namespace"] == "shop")
    assert (
        shop["inventory_workloads"],
        shop["ingress"]["policy_selected_share"],
        shop["egress"]["policy_selected_share"],
    ) == (2, 1.0, 0.5)
    backend = next(n for n in doc["namespaces"] if n["namespace"] == "backend")
    assert backend["ingress"]["policy_selected_share"] is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--store", "{missing}"], 4, "no flow store"),
        (["--window", "day", "--since", "24h"], 2, "not both"),
        (["--format", "pdf"], 2, "--format"),
        (["--policies", "p.yaml"], 2, "--policies needs --inventory"),
        (["--window", "day", "--at", "2026-11-25", "--fail-under", "90"], 10, "below --fail-under"),
    ],
)
def test_bad_options_and_failed_checks_exit_with_documented_codes(
    tmp_path: Path, args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from flowlens.cli import main

    shop_store(tmp_path / "store")
    argv = ["flowlens", "report", "--store", str(tmp_path / "store"), "--reports", str(tmp_path / "r")]
    argv += [a.replace("{missing}", str(tmp_path / "nope")) for a in args]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == code
    assert message in capsys.readouterr().err
