"""Endpoint resolution (flowlens.policy.endpoints): the labels Felix sees, and what stays unknown."""

from __future__ import annotations

from flowlens.policy import Endpoint
from flowlens.policy.endpoints import EndpointResolver
from flowlens.policy.selector import parse_selector
from tests.policy.helpers import cluster, pod, policies

SETS_AND_HOSTS = """
{apiVersion: projectcalico.org/v3, kind: NetworkSet, metadata: {name: partners, namespace: shop, labels: {kind: partner}}, spec: {nets: [192.168.10.0/24]}}
---
{apiVersion: projectcalico.org/v3, kind: GlobalNetworkSet, metadata: {name: internet, labels: {kind: public}}, spec: {nets: [8.0.0.0/7]}}
---
{apiVersion: projectcalico.org/v3, kind: HostEndpoint, metadata: {name: node-1-eth0, labels: {role: worker}}, spec: {node: node-1, expectedIPs: [10.1.0.1]}}
---
{apiVersion: projectcalico.org/v3, kind: HostEndpoint, metadata: {name: node-2-eth0, labels: {role: worker}}, spec: {node: node-2}}
---
{apiVersion: projectcalico.org/v3, kind: HostEndpoint, metadata: {name: node-2-eth1, labels: {role: storage}}, spec: {node: node-2}}
"""


def keys(text: str) -> frozenset[str]:
    return parse_selector(text).label_keys


def test_without_an_inventory_a_pod_has_its_implicit_labels_and_the_rest_is_unknown() -> None:
    resolver = EndpointResolver(policies(""))
    view = resolver.local(Endpoint("wep", "shop", "web-1", {"app": "web"})).ident.view
    assert view.labels["projectcalico.org/namespace"] == "shop"
    assert view.labels["projectcalico.org/orchestrator"] == "k8s"
    assert view.labels["pcns.kubernetes.io/metadata.name"] == "shop"
    assert view.labels["pcns.projectcalico.org/name"] == "shop"
    assert view.undecided(keys("pcns.kubernetes.io/metadata.name == 'shop' && app == 'web'")) is None
    assert (
        view.undecided(keys("pcns.team == 'a'"))
        == "the labels of namespace shop are not known (give --inventory)"
    )
    assert (
        view.undecided(keys("pcsa.role == 'x'"))
        == "the service account of shop/web-1 is not known (give --inventory)"
    )


def test_the_inventory_supplies_namespace_and_service_account_labels() -> None:
    inventory = cluster(
        [pod("shop", "web-1", {"app": "web"}, "10.0.0.5", sa="web")],
        namespaces={"shop": {"team": "a"}},
        service_accounts={("shop", "web"): {"role": "frontend"}},
    )
    view = (
        EndpointResolver(policies(""), inventory)
        .local(Endpoint("wep", "shop", "web-1", {"app": "web"}))
        .ident.view
    )
    assert (
        view.undecided(keys("pcns.team == 'a' && pcsa.role == 'x' && has(projectcalico.org/serviceaccount)"))
        is None
    )
    assert (
        view.labels["pcns.team"],
        view.labels["pcsa.role"],
        view.labels["pcsa.projectcalico.org/name"],
    ) == (
        "a",
        "frontend",
        "web",
    )


def test_an_address_carries_the_labels_of_every_network_set_that_holds_it() -> None:
    side = EndpointResolver(policies(SETS_AND_HOSTS)).side(Endpoint("net", ip="192.168.10.7"))
    assert side.complete
    (partners,) = side.idents  # 192.168.10.7 is outside 8.0.0.0/7
    assert partners.display == "NetworkSet shop/partners"
    assert partners.view.labels["kind"] == "partner"
    assert partners.view.labels["projectcalico.org/namespace"] == "shop"
    public = EndpointResolver(policies(SETS_AND_HOSTS)).side(Endpoint("net", ip="8.8.8.8"))
    assert [i.display for i in public.idents] == ["GlobalNetworkSet internet"]


def test_a_masked_address_may_be_in_a_network_set_only_when_one_can_hold_its_class() -> None:
    resolver = EndpointResolver(policies(SETS_AND_HOSTS))
    assert not resolver.side(Endpoint("net", name="pvt")).complete  # shop/partners is private
    only_public = EndpointResolver(policies(SETS_AND_HOSTS.split("---")[1]))
    assert only_public.side(Endpoint("net", name="pvt")).complete
    assert not only_public.side(Endpoint("net", name="pub")).complete


def test_a_host_endpoint_is_found_by_name_address_or_its_only_one_on_the_node() -> None:
    resolver = EndpointResolver(policies(SETS_AND_HOSTS))
    by_ip = resolver.side(Endpoint("net", ip="10.1.0.1"))
    assert [i.display for i in by_ip.idents] == ["host endpoint node-1-eth0"]
    by_node = resolver.local(Endpoint("hep", name="node-1", labels_known=False))
    assert (by_node.ident.name, by_node.ident.view.labels) == ("node-1-eth0", {"role": "worker"})
    two_on_node = resolver.local(Endpoint("hep", name="node-2", labels_known=False))
    assert two_on_node.profiles is None
    assert (
        two_on_node.ident.view.undecided(keys("role == 'worker'"))
        == "the labels of host endpoint node-2 are not known"
    )
