"""deploy/: the Kubernetes manifests validate against a fixed Kubernetes schema (offline), and every
scheduler runs a ``flowlens report`` command line that the CLI accepts."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from flowlens.cli import app
from tests.report.stores import shop_store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# A version kubernetes-validate ships schemas for; CronJob.spec.timeZone is GA since 1.27.
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def test_the_kubernetes_manifests_pass_strict_schema_validation() -> None:
    docs = _documents()
    assert sorted(d["kind"] for d in docs) == ["CronJob", "Namespace", "PersistentVolumeClaim"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_would_catch_a_misspelt_field() -> None:
    cronjob = next(d for d in _documents() if d["kind"] == "CronJob")
    cronjob["spec"]["schedulee"] = cronjob["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)


def test_the_cronjob_ingests_then_reports_on_the_persistent_volume() -> None:
    docs = {d["kind"]: d for d in _documents()}
    pod = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["args"][0] for c in pod["initContainers"]] == ["ingest"]
    assert [c["args"][0] for c in pod["containers"]] == ["report"]
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert docs["CronJob"]["spec"]["concurrencyPolicy"] == "Forbid"


def _report_argv_everywhere() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    pod = next(d for d in _documents() if d["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"
    ]
    found["kubernetes"] = pod["containers"][0]["args"]
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    # systemd allows repeated keys (two ExecStart= lines); keep the last one, which is the report.
    unit.read_string((DEPLOY / "systemd" / "flowlens-report.service").read_text())
    found["systemd"] = shlex.split(unit["Service"]["ExecStart"])[1:]
    line = next(
        ln for ln in (DEPLOY / "cron" / "flowlens.crontab").read_text().splitlines() if ln and ln[0].isdigit()
    )
    fields = line.split(None, 5)
    assert len(fields) == 6 and fields[:5] == ["30", "0", "*", "*", "*"]
    command = fields[5].split("&&")[1].split(">>")[0]
    found["cron"] = shlex.split(command)[1:]
    return found


@pytest.mark.parametrize("where", ["kubernetes", "systemd", "cron"])
def test_each_scheduler_runs_a_report_command_the_cli_accepts(tmp_path: Path, where: str) -> None:
    argv = _report_argv_everywhere()[where]
    assert argv[0] == "report"
    shop_store(tmp_path / "store")
    paths = {"/data/store": tmp_path / "store", "/var/lib/flowlens/store": tmp_path / "store"}
    paths |= {"/data/reports": tmp_path / "reports", "/var/lib/flowlens/reports": tmp_path / "reports"}
    argv = [str(paths.get(a, a)) for a in argv] + ["--format", "json"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "history.jsonl").is_file()
    # --window day without --at is yesterday: a real folder named by a date.
    folder = Path(result.stdout.strip())
    assert json.loads((folder / "report.json").read_text())["window"]["kind"] == "day"


def test_the_systemd_timer_fires_daily_and_catches_up() -> None:
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read_string((DEPLOY / "systemd" / "flowlens-report.timer").read_text())
    assert timer["Timer"]["OnCalendar"] == "*-*-* 00:30:00 UTC"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "flowlens-report.service"
    service = (DEPLOY / "systemd" / "flowlens-report.service").read_text()
    assert "Type=oneshot" in service
    assert service.index("ExecStart=/usr/local/bin/flowlens ingest") < service.index(
        "ExecStart=/usr/local/bin/flowlens report"
    )
