"""Finding the endpoints of explain --from/--to (flowlens.policy.lookup): inventory, policies,
then the flows of the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlens.errors import UsageError
from flowlens.policy import Endpoint, Evaluator
from flowlens.policy.lookup import lookup_endpoint
from flowlens.store import Store
from tests.factories import flow_row, write_store
from tests.policy.helpers import cluster, pod, policies

HOST_ENDPOINT = """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-1-eth0, labels: {role: node}}
spec: {node: node-1, expectedIPs: [10.1.0.1]}
"""


def flows(tmp_path: Path) -> Store:
    root = tmp_path / "store"
    write_store(
        root,
        [
            flow_row(source_ip="10.0.0.9", dest_ip="10.0.0.20"),
            flow_row(
                source_ip="10.0.0.9",
                dest_type="net",
                dest_namespace="-",
                dest_name_aggr="pub",
                dest_ip="198.51.100.4",
                dest_labels=None,
            ),
        ],
    )
    return Store(root)


def empty(tmp_path: Path) -> Store:
    return Store(tmp_path / "no-store")


def with_inventory() -> Evaluator:
    inventory = cluster([pod("default", "client-1", {"app": "client"}, "10.0.0.9", sa="client")])
    return Evaluator(policies(HOST_ENDPOINT), inventory)


def test_a_pod_name_is_found_in_the_inventory_with_its_facts(tmp_path: Path) -> None:
    endpoint = lookup_endpoint("default/client-1", with_inventory(), empty(tmp_path))
    assert (endpoint.kind, endpoint.namespace, endpoint.name, endpoint.ip) == (
        "wep",
        "default",
        "client-1",
        "10.0.0.9",
    )
    assert endpoint.service_account == "client"


def test_an_address_of_a_pod_or_host_endpoint_is_that_endpoint(tmp_path: Path) -> None:
    evaluator = with_inventory()
    assert lookup_endpoint("10.0.0.9", evaluator, flows(tmp_path)).name == "client-1"
    host = lookup_endpoint(" 10.1.0.1 ", evaluator, empty(tmp_path))
    assert (host.kind, host.name, dict(host.labels)) == ("hep", "node-1-eth0", {"role": "node"})


def test_without_an_inventory_a_workload_is_found_in_the_flows_with_its_recorded_labels(
    tmp_path: Path,
) -> None:
    evaluator = Evaluator(policies(""))
    for text in ("default/client", "default/client-5d8f7b9c6-*", "default/client-5d8f"):
        endpoint = lookup_endpoint(text, evaluator, flows(tmp_path))
        assert endpoint == Endpoint("wep", "default", "client-5d8f7b9c6-*", {"app": "client"}, "10.0.0.9")


def test_an_unknown_address_takes_its_recorded_identity_or_else_is_outside_the_cluster(
    tmp_path: Path,
) -> None:
    evaluator = Evaluator(policies(""))
    recorded = lookup_endpoint("198.51.100.4", evaluator, flows(tmp_path))
    assert (recorded.kind, recorded.name, recorded.ip) == ("net", "pub", "198.51.100.4")
    assert lookup_endpoint("203.0.113.1", evaluator, flows(tmp_path)) == Endpoint("net", ip="203.0.113.1")
    assert lookup_endpoint("203.0.113.1", evaluator, empty(tmp_path)) == Endpoint("net", ip="203.0.113.1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("client", "--from 'client': give NAMESPACE/WORKLOAD or an IP address"),
        ("default/nobody", "--from 'default/nobody': no such workload in the inventory or the flow store"),
    ],
)
def test_a_name_nothing_matches_is_a_usage_error_naming_the_option(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        lookup_endpoint(text, Evaluator(policies("")), flows(tmp_path), name="--from")
    assert str(info.value).startswith(message)
