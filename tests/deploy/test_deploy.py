"""deploy/: the Kubernetes manifests render (kustomize) and validate against a fixed Kubernetes
schema (offline, strict), keep the security settings every pod needs, and every scheduler runs a
``flowlens report`` command line that the CLI accepts."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import flowlens
from tests.deploy.helpers import pod_spec, render, split_image
from tests.helpers import run_cli
from tests.report.helpers import shop_store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# A version kubernetes-validate ships schemas for; CronJob.spec.timeZone is GA since 1.27.
KUBERNETES_VERSION = "1.30.0"
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}


def _image_uid() -> int:
    """The user the Containerfile and deploy/image (both paths) make the image run as."""
    root = DEPLOY.parent
    (user,) = re.findall(r"^USER (\d+):(\d+)$", (root / "Containerfile").read_text(), re.M)
    (script,) = re.findall(r"^uid=(\d+)$", (DEPLOY / "image" / "install").read_text(), re.M)
    (build,) = re.findall(r"^uid=(\d+)$", (DEPLOY / "image" / "build").read_text(), re.M)
    assert user[0] == user[1] == script == build
    return int(script)


IMAGE_UID = _image_uid()


def _kind(folder: Path) -> str:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())["kind"]


def _components() -> list[Path]:
    return sorted(p.parent for p in KUBERNETES.glob("*/kustomization.yaml") if _kind(p.parent) == "Component")


def _root() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def _documents() -> list[dict]:
    return render(KUBERNETES)


def _every_deployment() -> dict[str, list[dict]]:
    """The deployment as shipped, and the base with each component alone (so that a component the
    shipped kustomization leaves off is checked too)."""
    found = {"shipped": _documents()}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "kubernetes"
        shutil.copytree(KUBERNETES, copy)
        for component in _components():
            alone = copy / f"only-{component.name}"
            alone.mkdir()
            (alone / "kustomization.yaml").write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "kustomize.config.k8s.io/v1beta1",
                        "kind": "Kustomization",
                        "resources": ["../base"],
                        "components": [f"../{component.name}"],
                        "images": _root()["images"],
                    }
                )
            )
            found[component.name] = render(alone)
    return found


def test_the_shipped_deployment_is_the_base_and_the_nightly_report() -> None:
    docs = _documents()
    assert sorted(d["kind"] for d in docs) == ["CronJob", "Namespace", "PersistentVolumeClaim"]
    assert _root()["resources"] == ["base"]
    assert [c.name for c in _components()] == ["collector", "report"]
    # the collector needs a Secret of the user's (Goldmane's client certificate): one line turns it on
    assert _root()["components"] == ["report"]


def _with_components(tmp_path: Path, components: list[str]) -> Path:
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    root = yaml.safe_load((copy / "kustomization.yaml").read_text())
    root["components"] = components
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(root))
    return copy


def test_every_component_switched_on_renders_alike_in_kubectl_and_the_test_renderer(tmp_path: Path) -> None:
    folder = _with_components(
        tmp_path, [c.name for c in sorted(_components(), key=lambda c: c.name != "report")]
    )
    docs = render(folder)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert _by_identity(_kubectl_kustomize(folder)) == _by_identity(docs)


def test_with_the_collector_on_the_report_runs_beside_it_and_its_ingest_waits_its_turn(
    tmp_path: Path,
) -> None:
    docs = {d["kind"]: d for d in render(_with_components(tmp_path, ["report", "collector"]))}
    collector = docs["Deployment"]["spec"]["template"]
    report = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (term,) = report["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= collector["metadata"]["labels"].items()
    assert report["initContainers"][0]["args"][-2:] == ["--wait-for-lock", "600"]
    assert (
        docs["Deployment"]["spec"]["replicas"] == 1
        and docs["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    )
    service = docs["Service"]
    assert service["spec"]["selector"].items() <= collector["metadata"]["labels"].items()


def test_the_collectors_command_lines_are_ones_the_cli_accepts(tmp_path: Path) -> None:
    docs = {d["kind"]: d for d in render(_with_components(tmp_path, ["report", "collector"]))}
    for container in docs["Deployment"]["spec"]["template"]["spec"]["containers"]:
        args = container["args"]
        assert args[:2] in (["collect", "goldmane"], ["collect", "serve"])
        result = run_cli(*args[:2], "--help")
        assert result.code == 0
        options = {a for a in args[2:] if a.startswith("--")}
        assert options and all(o in result.stdout for o in options), (options, result.stdout)
        assert args[args.index("--store") + 1] == "/data/store"
    report_ingest = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0][
        "args"
    ]
    assert "--wait-for-lock" in run_cli("ingest", "--help").stdout
    assert report_ingest[0] == "ingest"


@pytest.mark.parametrize("deployment", ["shipped", *(c.name for c in _components())])
def test_every_rendered_manifest_passes_strict_schema_validation(deployment: str) -> None:
    docs = _every_deployment()[deployment]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_would_catch_a_misspelt_field() -> None:
    cronjob = next(d for d in _documents() if d["kind"] == "CronJob")
    cronjob["spec"]["schedulee"] = cronjob["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)


def _pods() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, kind, pod spec) of every workload in every deployment."""
    pods = []
    for deployment, docs in _every_deployment().items():
        for doc in docs:
            spec = pod_spec(doc)
            if spec is not None:
                pods.append((f"{deployment}: {doc['kind']}/{doc['metadata']['name']}", doc["kind"], spec))
    assert pods
    return pods


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def test_every_pod_runs_as_the_image_user_with_the_runtime_seccomp_profile() -> None:
    for where, _, pod in _pods():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] == security["runAsGroup"] == IMAGE_UID, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where


def test_every_container_is_locked_down_and_has_requests_and_limits() -> None:
    for where, kind, pod in _pods():
        for c in _containers(pod):
            name = f"{where} container {c['name']}"
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, name
            for bound in ("requests", "limits"):
                assert set(c["resources"][bound]) == {"cpu", "memory"}, name
            # the root filesystem is read-only: HOME, caches and matplotlib write under a mounted /tmp;
            # every part works on the shared claim at /data
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name
            assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == "flowlens-data", name
            env = {e["name"]: e["value"] for e in c["env"]}
            assert env["HOME"] == "/tmp" and env["MPLCONFIGDIR"].startswith("/tmp/"), name
            if kind in LONG_RUNNING:
                assert "livenessProbe" in c and "readinessProbe" in c, name


def test_the_namespace_enforces_the_restricted_pod_security_standard() -> None:
    (namespace,) = [d for d in _documents() if d["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = [d for d in _documents() if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {namespace["metadata"]["name"]}


def test_the_image_is_one_field_and_its_tag_is_the_flowlens_version() -> None:
    (rule,) = _root()["images"]
    assert rule == {"name": "flowlens", "newTag": flowlens.__version__}
    images = {c["image"] for _, _, pod in _pods() for c in _containers(pod)}
    assert images == {f"flowlens:{flowlens.__version__}"}


def _kubectl_kustomize(folder: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests were rendered by the test renderer only")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def _by_identity(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_kubectl_kustomize_renders_what_the_test_renderer_renders() -> None:
    assert _by_identity(_kubectl_kustomize(KUBERNETES)) == _by_identity(_documents())


def test_setting_the_image_field_changes_every_container(tmp_path: Path) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    root = yaml.safe_load((copy / "kustomization.yaml").read_text())
    root["images"] = [
        {"name": "flowlens", "newName": "registry.example.com:5000/team/flowlens", "newTag": "9.9.9"}
    ]
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(root))
    renders = [render(copy)]
    if shutil.which("kubectl"):
        renders.append(_kubectl_kustomize(copy))
    for docs in renders:
        images = {c["image"] for d in docs if (spec := pod_spec(d)) is not None for c in _containers(spec)}
        assert images == {"registry.example.com:5000/team/flowlens:9.9.9"}


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("flowlens", ("flowlens", None, None)),
        ("flowlens:0.1.0", ("flowlens", "0.1.0", None)),
        ("registry:5000/a/flowlens", ("registry:5000/a/flowlens", None, None)),
        ("registry:5000/flowlens:1@sha256:ab", ("registry:5000/flowlens", "1", "sha256:ab")),
    ],
)
def test_the_test_renderer_splits_image_references_like_kustomize(image: str, parts: tuple) -> None:
    assert split_image(image) == parts


def test_the_test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("kind: Kustomization\nnamespace: other\n")
    with pytest.raises(ValueError, match="does not support"):
        render(tmp_path)


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
    result = run_cli(*argv)
    assert result.code == 0, result
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


def _containerfile_env() -> dict[str, str]:
    text = (DEPLOY.parent / "Containerfile").read_text()
    block = re.search(r"^ENV (.*?)(?<!\\)$", text, re.M | re.S)
    assert block is not None
    return dict(item.split("=", 1) for item in block.group(1).replace("\\\n", " ").split())


def _build_script_env() -> dict[str, str]:
    text = (DEPLOY / "image" / "build").read_text()
    block = re.search(r"^for env in (.*?); do$", text, re.M | re.S)
    assert block is not None
    return dict(item.split("=", 1) for item in block.group(1).replace("\\\n", " ").split())


def test_both_image_builds_give_the_image_the_same_environment_user_and_entrypoint() -> None:
    containerfile = (DEPLOY.parent / "Containerfile").read_text()
    build = (DEPLOY / "image" / "build").read_text()
    assert _containerfile_env() == _build_script_env()
    assert (
        _containerfile_env()["HOME"] == "/tmp" and _containerfile_env()["MPLCONFIGDIR"] == "/tmp/matplotlib"
    )
    assert 'ENTRYPOINT ["/opt/flowlens/bin/flowlens"]' in containerfile
    assert "--config.entrypoint /opt/flowlens/bin/flowlens" in build
    assert "WORKDIR /data" in containerfile and "--config.workingdir /data" in build
    # both install with the same script and constraints, the extras passed through
    assert 'install venv /tmp/dist/flowlens-*.whl "$EXTRAS" deploy/image/constraints.txt' in containerfile
    assert "install venv" in build and '"$extras"' in build


def test_the_containerfile_labels_the_version_licence_and_source() -> None:
    containerfile = (DEPLOY.parent / "Containerfile").read_text()
    assert f"ARG VERSION={flowlens.__version__}\n" in containerfile
    for label in ("version", "source", "licenses", "title", "description"):
        assert f"org.opencontainers.image.{label}=" in containerfile
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in containerfile
    project = (DEPLOY.parent / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in project


def test_the_build_context_holds_what_the_containerfile_copies_and_not_the_virtualenv() -> None:
    ignore = (DEPLOY.parent / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") - 1].startswith("#")  # everything is left out first...
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    containerfile = (DEPLOY.parent / "Containerfile").read_text()
    copied = set()
    for line in re.findall(r"^COPY (?!--from)(.*)$", containerfile, re.M):
        copied |= set(line.split()[:-1])
    copied |= set(re.findall(r"--mount=type=bind,source=([^,]+),", containerfile))
    assert copied and copied <= allowed  # ...then only what the build reads comes back
    assert ".venv" not in allowed


def test_the_systemd_unit_points_at_a_docs_section_that_exists() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "systemd" / "flowlens-report.service").read_text())
    url = unit["Unit"]["Documentation"]
    source = re.search(r"ARG SOURCE_URL=(\S+)", (DEPLOY.parent / "Containerfile").read_text())
    assert source is not None
    prefix = source.group(1) + "/blob/main/"
    assert url.startswith(prefix), url
    path, _, anchor = url.removeprefix(prefix).partition("#")
    page = DEPLOY.parent / path
    assert path.startswith("docs/") and page.is_file(), url
    lines = page.read_text().splitlines()
    anchors = {line.lstrip("#").strip().lower().replace(" ", "-") for line in lines if line.startswith("#")}
    assert anchor in anchors, url
