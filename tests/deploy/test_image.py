"""deploy/image/build makes the flowlens image from Debian packages and PyPI (no container engine,
no registry), and the image works: its configuration is what the manifests expect, and flowlens
runs inside its root filesystem as user 10001 with the root read-only.

The build takes a few minutes (it downloads Debian packages and wheels; both are cached in
``~/.cache/flowlens-image``), so the image is built once for the whole module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

import flowlens

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "deploy" / "image"
UID = 10001
TOOLS = ("mmdebstrap", "umoci", "unshare", "chroot")

pytestmark = [pytest.mark.slow, pytest.mark.image]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap --mode=root, chroot, mounts)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed (.ci/run installs them: apt-get install mmdebstrap umoci)"
        )
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("image")
    result = subprocess.run(
        [str(IMAGE / "build"), "--out", str(out)], capture_output=True, text=True, timeout=1800, check=False
    )
    assert result.returncode == 0, result.stderr[-5000:]
    info = json.loads((out / "image.json").read_text())
    layout = out / "oci"
    with tarfile.open(out / info["archive"]) as archive:
        archive.extractall(layout, filter="data")
    bundle = out / "bundle"
    unpack = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:{info['tag']}", str(bundle)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert unpack.returncode == 0, unpack.stderr
    return {"out": out, "info": info, "layout": layout, "rootfs": bundle / "rootfs", "log": result.stderr}


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    algorithm, _, value = digest.partition(":")
    return json.loads((layout / "blobs" / algorithm / value).read_text())


def _config(built: dict[str, Any]) -> dict[str, Any]:
    index = json.loads((built["layout"] / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == flowlens.__version__
    manifest = _blob(built["layout"], entry["digest"])
    return manifest | {"_config": _blob(built["layout"], manifest["config"]["digest"])}


def _run(built: dict[str, Any], data: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` inside the image: read-only root, tmpfs /tmp, ``data`` at /data, as user 10001."""
    config = _config(built)["_config"]["config"]
    env_file = data.parent / f"{data.name}.env"
    env_file.write_text("\n".join(config["Env"]) + "\n")
    data.mkdir(exist_ok=True)
    os.chown(data, UID, UID)
    return subprocess.run(
        [str(IMAGE / "run-rootfs"), str(built["rootfs"]), str(data), config["User"], str(env_file), *command],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_image_runs_flowlens_as_the_manifests_user_with_a_read_only_root_friendly_environment(
    built: dict[str, Any],
) -> None:
    manifest = _config(built)
    config = manifest["_config"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/opt/flowlens/bin/flowlens"]
    assert config["Cmd"] == ["--help"]
    assert config["WorkingDir"] == "/data"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["HOME"] == "/tmp" and env["MPLCONFIGDIR"] == "/tmp/matplotlib"
    assert env["XDG_CACHE_HOME"].startswith("/tmp/") and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/flowlens/bin:")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == flowlens.__version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert manifest["annotations"] == labels
    assert len(manifest["layers"]) == 1
    passwd = (built["rootfs"] / "etc" / "passwd").read_text()
    assert f"flowlens:x:{UID}:{UID}:flowlens:/tmp:/usr/sbin/nologin" in passwd.splitlines()


def test_the_image_holds_flowlens_and_the_pinned_dependencies_and_no_pip(built: dict[str, Any]) -> None:
    site = next((built["rootfs"] / "opt" / "flowlens" / "lib").glob("python3.*/site-packages"))
    assert (site / "flowlens" / "queries" / "denied.sql").is_file()
    assert not list(site.glob("pip")) and not list(site.glob("pip-*"))
    installed = (built["out"] / "python-packages.txt").read_text().splitlines()
    pinned = [
        line
        for line in (IMAGE / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert installed == pinned
    assert not list(site.glob("pandas/tests")) and not list(site.glob("pyarrow/include"))
    debian = (built["out"] / "debian-packages.txt").read_text()
    assert re.search(r"^python3 3\.11", debian, re.M)
    assert "python3-pip-whl" not in debian


def test_help_version_and_the_demo_run_inside_the_image_as_its_user(
    built: dict[str, Any], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    helped = _run(built, data, "flowlens", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: flowlens" in helped.stdout and "demo" in helped.stdout

    version = _run(built, data, "flowlens", "version", "--json")
    assert version.returncode == 0, version.stderr
    versions = json.loads(version.stdout)
    assert versions["flowlens"] == flowlens.__version__
    pins = dict(line.split("==") for line in (built["out"] / "python-packages.txt").read_text().splitlines())
    assert versions["duckdb"] == pins["duckdb"] and versions["pyarrow"] == pins["pyarrow"]
    assert versions["python"].startswith("3.11.")

    demo = _run(built, data, "flowlens", "demo")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "generated the sample cluster (38139 Calico Enterprise flow records" in demo.stderr
    assert "flowlens demo: done." in demo.stderr
    assert "knp:production/allow-frontend-to-backend" in demo.stdout
    report = json.loads((data / "reports" / "latest" / "report.json").read_text())
    assert report["summary"]["records"] == 38139
    # everything the demo wrote belongs to the image's user
    assert {p.stat().st_uid for p in data.rglob("*")} == {UID}


def test_inside_the_image_the_user_is_not_root_and_cannot_write_outside_tmp_and_data(
    built: dict[str, Any], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    probe = (
        "import os, pathlib\n"
        "print(os.getuid(), os.getgid())\n"
        "for where in ('/opt/flowlens/x', '/etc/x', '/tmp/x', '/data/x'):\n"
        "    try:\n"
        "        pathlib.Path(where).write_text('x')\n"
        "        print(where, 'written')\n"
        "    except OSError as exc:\n"
        "        print(where, 'refused', exc.errno)\n"
    )
    result = _run(built, data, "/opt/flowlens/bin/python", "-c", probe)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{UID} {UID}"
    assert lines[1:] == [
        "/opt/flowlens/x refused 30",
        "/etc/x refused 30",
        "/tmp/x written",
        "/data/x written",
    ]
