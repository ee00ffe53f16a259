"""Every emitted object passes its schema: Kubernetes OpenAPI (kubernetes-validate, fixed
version) and the vendored projectcalico.org/v3 schema (jsonschema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flowlens.suggest.validate import KUBERNETES_VERSION, calico_kinds, validate_object, validate_objects
from tests.suggest.helpers import make_store, run

CONFIGS = [
    {},
    {"staged": True},
    {"flavor": "calico", "baseline": True, "include_denied": True},
    {"flavor": "calico", "staged": True, "baseline": True, "max_extra_addresses": 8},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "store")


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default"
)
def test_every_emitted_object_passes_its_schema(store: Path, config: dict[str, object]) -> None:
    docs = list(yaml.safe_load_all(run(store, **config).stream()))
    assert len(docs) >= 5
    assert validate_objects(docs) == []


def test_the_kubernetes_check_uses_a_fixed_version_and_rejects_bad_objects() -> None:
    assert KUBERNETES_VERSION.count(".") == 2
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {}}]}]},
    }
    assert validate_object(bad) != []


def test_the_calico_schema_rejects_unknown_fields_and_ports_without_protocol() -> None:
    assert set(calico_kinds()) >= {"NetworkPolicy", "GlobalNetworkPolicy", "Tier", "GlobalNetworkSet"}
    obj = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "flowlens.x", "namespace": "shop"},
        "spec": {"selector": "all()", "egress": [{"action": "Allow", "destination": {"ports": [80]}}]},
    }
    assert any("protocol" in p for p in validate_object(obj))
    obj["spec"] = {"selector": "all()", "egres": []}
    assert any("egres" in p for p in validate_object(obj))
    obj["spec"] = {
        "selector": "all()",
        "egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["1:2"]}}],
    }
    assert validate_object(obj) == []
