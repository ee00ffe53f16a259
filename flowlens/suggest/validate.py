"""Schema checks for emitted manifests, offline.

Kubernetes objects are checked with the ``kubernetes-validate`` package against the OpenAPI schema
of a fixed Kubernetes version it ships (:data:`KUBERNETES_VERSION`); ``projectcalico.org/v3``
objects and the cluster policy kinds of ``policy.networking.k8s.io`` (ClusterNetworkPolicy,
AdminNetworkPolicy, BaselineAdminNetworkPolicy) against the JSON Schemas in ``flowlens/crds/``
(:data:`SCHEMAS`) with ``jsonschema``. Both packages are optional at run time: :func:`available`
says whether they are installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from importlib.util import find_spec
from typing import Any

KUBERNETES_VERSION = "1.33.0"
CALICO_SCHEMA = "projectcalico.org_v3.json"
#: The JSON Schemas shipped in ``flowlens/crds/``, by apiVersion.
SCHEMAS = {
    "projectcalico.org/v3": CALICO_SCHEMA,
    "policy.networking.k8s.io/v1alpha2": "policy.networking.k8s.io_v1alpha2.json",
    "policy.networking.k8s.io/v1alpha1": "policy.networking.k8s.io_v1alpha1.json",
}


def available() -> bool:
    """Whether both validators can run here."""
    return find_spec("jsonschema") is not None and find_spec("kubernetes_validate") is not None


@cache
def schema(api_version: str) -> dict[str, Any]:
    """The shipped schema document of ``api_version`` (one of :data:`SCHEMAS`)."""
    text = resources.files("flowlens").joinpath("crds", SCHEMAS[api_version]).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def calico_schema() -> dict[str, Any]:
    """The vendored ``projectcalico.org/v3`` schema document."""
    return schema("projectcalico.org/v3")


def calico_kinds() -> tuple[str, ...]:
    return tuple(sorted(calico_schema()["kinds"]))


@cache
def _validator(api_version: str, kind: str) -> Any:
    import jsonschema

    doc = schema(api_version)
    root = {"$schema": doc["$schema"], "$defs": doc["$defs"], **doc["kinds"][kind]}
    cls = jsonschema.validators.validator_for(root)
    cls.check_schema(root)
    return cls(root)


def validate_object(obj: Mapping[str, Any]) -> list[str]:
    """Schema problems of one object (empty when it is valid)."""
    api = obj.get("apiVersion")
    kind = str(obj.get("kind"))
    name = (obj.get("metadata") or {}).get("name", "?")
    where = f"{kind} {name}"
    if api in SCHEMAS:
        if kind not in schema(str(api))["kinds"]:
            return [f"{where}: no vendored schema for {api} kind {kind!r}"]
        validator = _validator(str(api), kind)
        errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(e.absolute_path))
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {'/'.join(map(str, exc.path)) or '(root)'}: {exc.message}"]
    return []


def validate_objects(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems of every object, in order."""
    return [problem for obj in objects for problem in validate_object(obj)]
