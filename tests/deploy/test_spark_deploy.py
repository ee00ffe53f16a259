"""deploy/spark/: the Spark operator's manifests load with safe YAML, run what the image installs
with a command line the CLI accepts, render with kustomize, and the spark-submit example writes,
on Spark, the report DuckDB writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml

from flowlens.cli import app
from tests.engine.helpers import without_times
from tests.helpers import run_cli

SPARK = Path(__file__).resolve().parents[2] / "deploy" / "spark"
OPERATOR = "sparkoperator.k8s.io/v1beta2"


def _load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((SPARK / name).read_text())
    assert isinstance(doc, dict)
    return doc


def _application() -> dict[str, Any]:
    return _load("sparkapplication.yaml")["spec"]


def _containerfile() -> str:
    return (SPARK / "Containerfile").read_text()


def _parses(argv: list[str]) -> Any:
    """``flowlens ARGV`` parsed by the real command line (typer's click command), not run: the
    click context, whose ``params`` are the values of the options."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:]))


def test_the_manifests_are_the_spark_operators_v1beta2_kinds_in_the_flowlens_namespace() -> None:
    one_off = _load("sparkapplication.yaml")
    scheduled = _load("scheduledsparkapplication.yaml")
    assert (one_off["apiVersion"], one_off["kind"]) == (OPERATOR, "SparkApplication")
    assert (scheduled["apiVersion"], scheduled["kind"]) == (OPERATOR, "ScheduledSparkApplication")
    assert one_off["metadata"]["namespace"] == scheduled["metadata"]["namespace"] == "flowlens"
    spec = one_off["spec"]
    assert (spec["type"], spec["mode"], spec["pythonVersion"]) == ("Python", "cluster", "3")


def test_the_nightly_application_runs_the_same_job_as_the_one_off() -> None:
    scheduled = _load("scheduledsparkapplication.yaml")["spec"]
    assert scheduled["template"] == _application()
    assert scheduled["schedule"] == "30 0 * * *"
    assert scheduled["concurrencyPolicy"] == "Forbid"


def test_the_driver_runs_a_report_on_spark_that_the_cli_accepts() -> None:
    argv = _application()["arguments"]
    assert argv[0] == "report"
    params = _parses(argv).params
    assert params["engine"] == "spark"
    assert (params["store"], params["reports"], params["window"]) == (
        "/data/store",  # (text: a store may be a URL, which a Path would fold)
        Path("/data/reports"),
        "day",
    )


def test_the_init_container_ingests_the_incoming_folder_into_the_same_store() -> None:
    (init,) = _application()["driver"]["initContainers"]
    assert init["command"] == ["/opt/flowlens/bin/flowlens"]
    params = _parses(init["args"]).params
    assert params["store"] == "/data/store"
    assert init["image"] == _application()["image"]


def test_a_bad_argument_would_be_caught() -> None:
    with pytest.raises(Exception, match="No such option"):
        _parses(["report", "--window", "day", "--no-such-option"])


def test_the_applications_run_the_driver_script_and_the_python_the_image_installs() -> None:
    spec = _application()
    containerfile = _containerfile()
    copies = dict(
        (dest, source)
        for source, dest in re.findall(r"^COPY (\S+) (\S+)$", containerfile, flags=re.MULTILINE)
    )
    script = spec["mainApplicationFile"].removeprefix("local://")
    assert copies[script] == "deploy/spark/flowlens-submit.py"
    assert (SPARK / "flowlens-submit.py").is_file()
    venv = re.search(r"-m venv (\S+)", containerfile)
    assert venv is not None
    for key in ("spark.pyspark.python", "spark.pyspark.driver.python"):
        assert spec["sparkConf"][key] == f"{venv.group(1)}/bin/python"
    assert spec["driver"]["initContainers"][0]["command"][0] == f"{venv.group(1)}/bin/flowlens"


def test_the_manifests_spark_version_is_the_images() -> None:
    base = re.search(r"^ARG SPARK_IMAGE=\S+:(\d+\.\d+\.\d+)-", _containerfile(), flags=re.MULTILINE)
    assert base is not None
    assert _application()["sparkVersion"] == base.group(1)


def test_every_spark_pod_runs_as_the_images_user_locked_down() -> None:
    spec = _application()
    user = re.findall(r"^USER (\d+)", _containerfile(), flags=re.MULTILINE)[-1]
    containers = [spec["driver"], spec["executor"], *spec["driver"]["initContainers"]]
    for container in containers:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and str(context["runAsUser"]) == user
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for pod in (spec["driver"], spec["executor"]):
        assert str(pod["podSecurityContext"]["runAsUser"]) == user
        assert {m["mountPath"] for m in pod["volumeMounts"]} == {"/data", "/tmp"}
    assert spec["sparkConf"]["spark.local.dir"].startswith("/tmp/")


def test_the_driver_may_start_executor_pods_in_its_namespace_only() -> None:
    docs = list(yaml.safe_load_all((SPARK / "rbac.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "Role", "RoleBinding"}
    assert kinds["ServiceAccount"]["metadata"]["name"] == _application()["driver"]["serviceAccount"]
    assert "pods" in kinds["Role"]["rules"][0]["resources"]
    assert kinds["RoleBinding"]["subjects"][0]["name"] == kinds["ServiceAccount"]["metadata"]["name"]


def _kubectl_kustomize(folder: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_the_component_renders_on_the_base_with_the_image_set_and_a_shared_claim(tmp_path: Path) -> None:
    # kustomize refuses a folder outside the kustomization's root unless it is a kustomization
    # of its own: the test's kustomization sits in deploy/ beside kubernetes/ and spark/.
    folder = SPARK.parent / f".test-{os.getpid()}"
    folder.mkdir()
    try:
        (folder / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources: [../kubernetes/base]\ncomponents: [../spark]\n"
            "images: [{name: flowlens-spark, newName: registry.example.com/flowlens-spark, newTag: '1.2.3'}]\n"
        )
        docs = _kubectl_kustomize(folder)
    finally:
        shutil.rmtree(folder)
    by_kind = {d["kind"]: d for d in docs}
    assert by_kind["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    want = "registry.example.com/flowlens-spark:1.2.3"
    for spec in (
        by_kind["SparkApplication"]["spec"],
        by_kind["ScheduledSparkApplication"]["spec"]["template"],
    ):
        assert spec["image"] == want
        assert spec["driver"]["initContainers"][0]["image"] == want
        assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "flowlens-data"


@pytest.mark.spark
def test_the_spark_submit_example_writes_the_report_duckdb_writes(sample_store: Path, tmp_path: Path) -> None:
    """spark-submit (pyspark's own) runs the driver script in local mode, in a JVM of its own; the
    settings of spark-defaults.conf reach the session flowlens runs on (its event log is written)."""
    submit = Path(sys.executable).parent / "spark-submit"
    if not submit.exists():
        pytest.skip("pyspark's spark-submit is not installed")
    conf = tmp_path / "conf"
    conf.mkdir()
    events = tmp_path / "events"
    events.mkdir()
    (conf / "spark-defaults.conf").write_text(
        f"spark.eventLog.enabled true\nspark.eventLog.dir file://{events}\nspark.eventLog.compress false\n"
        "spark.sql.shuffle.partitions 3\n"
    )
    env = {**os.environ, "SPARK_CONF_DIR": str(conf), "PYSPARK_PYTHON": sys.executable}
    env |= {"PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("FLOWLENS_ENGINE", None)
    window = ["--window", "day", "--at", "2026-11-25", "--format", "json"]
    argv = [str(submit), "--master", "local[2]", str(SPARK / "flowlens-submit.py"), "report"]
    argv += ["--store", str(sample_store), "--reports", str(tmp_path / "spark"), *window]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit merges the driver's stderr into its stdout: the report's folder is the last line.
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path / "spark"
    got = json.loads((folder / "report.json").read_text())
    duck = run_cli("report", "--store", sample_store, "--reports", tmp_path / "duckdb", *window)
    assert duck.code == 0, str(duck)
    want = json.loads((Path(duck.stdout.strip()) / "report.json").read_text())
    assert without_times(got) == without_times(want)
    assert want["summary"]["score"] is not None
    # The session flowlens ran on kept spark-submit's master and name and spark-defaults.conf.
    properties = _spark_properties(events)
    assert properties["spark.master"] == "local[2]"
    assert properties["spark.app.name"] == "flowlens-submit.py"
    assert properties["spark.sql.shuffle.partitions"] == "3"
    assert properties["spark.sql.session.timeZone"] == "UTC"


def _spark_properties(events: Path) -> dict[str, str]:
    """The Spark properties of the session, from its event log (written once it started)."""
    for path in sorted(p for p in events.rglob("*") if p.is_file() and "appstatus" not in p.name):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerEnvironmentUpdate":
                found = event["Spark Properties"]
                return dict(found) if isinstance(found, dict) else {k: v for k, v in found}
    raise AssertionError(f"no session wrote an event log into {events}: spark-defaults.conf was not read")
