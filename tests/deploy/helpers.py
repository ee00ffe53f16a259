"""A small kustomize renderer for the subset deploy/kubernetes uses, so that the manifests are
validated where no kustomize binary is installed (and compared with `kubectl kustomize` where one is).

Supported: ``resources`` (YAML files and kustomization folders), ``components`` (folders whose
kustomization is ``kind: Component``), ``images`` (``name`` with ``newName``, ``newTag`` or
``digest``) applied to the containers and init containers of every pod template, and ``patches``
that are JSON 6902 ``add`` operations on a ``target`` chosen by kind and name (a target that
matches nothing is passed over, as kustomize does). Anything else in a kustomization is refused,
so that a manifest change that needs more fails here, loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "components", "images", "patches"}
POD_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _kustomization(folder: Path) -> dict[str, Any]:
    doc = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(doc) - SUPPORTED
    if unsupported:
        raise ValueError(f"{folder}: the test renderer does not support {sorted(unsupported)}")
    return doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a workload object (None for other kinds)."""
    path = POD_TEMPLATE_PATHS.get(doc.get("kind", ""))
    if path is None:
        return None
    spec: dict[str, Any] = doc
    for key in path:
        spec = spec[key]
    return spec


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/name:tag@sha256:...`` -> (``registry:5000/name``, tag, digest)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def _set_images(docs: list[dict[str, Any]], images: list[dict[str, str]]) -> None:
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            name, tag, digest = split_image(container["image"])
            for rule in images:
                if rule["name"] != name:
                    continue
                name = rule.get("newName", name)
                if "digest" in rule:
                    tag, digest = None, rule["digest"]
                elif "newTag" in rule:
                    tag, digest = str(rule["newTag"]), None
                container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                break


def _apply_patches(docs: list[dict[str, Any]], patches: list[dict[str, Any]]) -> None:
    for patch in patches:
        target = patch["target"]
        if set(target) - {"kind", "name"}:
            raise ValueError(f"the test renderer does not support patch targets by {sorted(set(target))}")
        operations = yaml.safe_load(patch["patch"])
        for doc in docs:
            if doc.get("kind") != target.get("kind") or doc["metadata"]["name"] != target.get(
                "name", doc["metadata"]["name"]
            ):
                continue
            for op in operations:
                if op["op"] != "add":
                    raise ValueError(f"the test renderer does not support the patch operation {op['op']!r}")
                *parents, last = [
                    part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]
                ]
                node: Any = doc
                for part in parents:
                    node = node[int(part)] if isinstance(node, list) else node[part]
                if isinstance(node, list):
                    if last == "-":
                        node.append(op["value"])
                    else:
                        node.insert(int(last), op["value"])
                else:
                    node[last] = op["value"]


def _resources(folder: Path, entries: list[str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for entry in entries:
        path = folder / entry
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def render(folder: Path) -> list[dict[str, Any]]:
    """The documents `kubectl kustomize folder` prints (in file order, not kustomize's kind order)."""
    doc = _kustomization(folder)
    if doc["kind"] != "Kustomization":
        raise ValueError(f"{folder} is a {doc['kind']}: render the kustomization that uses it")
    docs = _resources(folder, doc.get("resources", []))
    for component in doc.get("components", []):
        inner = _kustomization(folder / component)
        if inner["kind"] != "Component":
            raise ValueError(f"{folder / component} is listed as a component but is a {inner['kind']}")
        docs += _resources(folder / component, inner.get("resources", []))
        _apply_patches(docs, inner.get("patches", []))
        _set_images(docs, inner.get("images", []))
    _set_images(docs, doc.get("images", []))
    return docs
