"""flowlens report on the command line: output streams, options and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import CliResult, run_cli
from tests.report.helpers import INVENTORY, POLICIES, shop_store


def _invoke(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    return run_cli("report", *args, env=env, cwd=cwd)


def test_report_prints_the_folder_on_stdout_and_a_summary_on_stderr(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    reports = tmp_path / "reports"
    result = _invoke(
        "--store", str(tmp_path / "store"), "--reports", str(reports), "--window", "day", "--at", "2026-11-25"
    )
    assert result.code == 0, result
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
    assert result.code == 0, result
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
    assert result.code == 0, result
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
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    shop_store(tmp_path / "store")
    argv = ["--store", str(tmp_path / "store"), "--reports", str(tmp_path / "r")]
    argv += [a.replace("{missing}", str(tmp_path / "nope")) for a in args]
    result = _invoke(*argv)
    assert result.code == code
    assert message in result.stderr


def test_the_reports_folder_is_the_option_then_the_config_then_reports(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    day = ["--store", str(tmp_path / "store"), "--window", "day", "--at", "2026-11-25", "--format", "json"]
    plain = _invoke(*day, cwd=tmp_path)
    assert plain.code == 0, plain
    assert plain.stdout.strip() == str(Path("reports") / "2026-11-25")
    assert (tmp_path / "reports" / "2026-11-25" / "report.json").is_file()

    (tmp_path / "flowlens.yaml").write_text("reports: ./from-config\n")
    configured = _invoke(*day, cwd=tmp_path)
    assert configured.code == 0, configured
    assert configured.stdout.strip() == str(tmp_path / "from-config" / "2026-11-25")
    assert (tmp_path / "from-config" / "index.html").is_file()

    chosen = _invoke(*day, "--reports", str(tmp_path / "chosen"), cwd=tmp_path)
    assert chosen.code == 0, chosen
    assert chosen.stdout.strip() == str(tmp_path / "chosen" / "2026-11-25")
    assert (tmp_path / "chosen" / "index.html").is_file()
