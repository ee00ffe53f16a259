"""Rule matching (flowlens.policy.matching): three-valued answers that are never wrong."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from flowlens.policy.compiled import compile_policy
from flowlens.policy.endpoints import PRIVATE, Side
from flowlens.policy.matching import Matcher, nets_match
from flowlens.policy.model import IPAddress, IPNetwork
from tests.policy.helpers import policies

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
networks = st.tuples(ipv4, st.integers(0, 32)).map(
    lambda t: ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)
)
private = st.sampled_from(PRIVATE).flatmap(
    lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net.network_address + i)
)


def side(ips: tuple[IPAddress, ...] | None = None, ip_class: str | None = None) -> Side:
    return Side(ips, ip_class, (), ips is not None, (), "the peer")


def _inside(ip: IPAddress, nets: tuple[IPNetwork, ...]) -> bool:
    return any(ip in n for n in nets)


@given(st.lists(networks, min_size=1, max_size=4), st.lists(ipv4, min_size=1, max_size=3))
def test_known_addresses_match_when_all_are_inside_and_not_when_none_is(
    nets: list[IPNetwork], ips: list[IPAddress]
) -> None:
    inside = [_inside(ip, tuple(nets)) for ip in ips]
    expected = True if all(inside) else False if not any(inside) else None
    assert nets_match(tuple(nets), side(tuple(ips))) is expected


@given(st.lists(networks, min_size=1, max_size=4), private, ipv4)
def test_a_masked_address_is_decided_only_when_its_class_decides_it(
    nets: list[IPNetwork], some_private: IPAddress, some_address: IPAddress
) -> None:
    # A decided answer must hold for every address of the class; None is always allowed.
    nets_t = tuple(nets)
    pvt = nets_match(nets_t, side(ip_class="pvt"))
    if pvt is not None:
        assert _inside(some_private, nets_t) is pvt
    is_public = not _inside(some_address, PRIVATE)
    pub = nets_match(nets_t, side(ip_class="pub"))
    if pub is False and is_public:
        assert not _inside(some_address, nets_t)
    assert pub is not True  # no list of CIDRs is known to hold every public address here


def test_an_unknown_address_without_a_class_is_undecided() -> None:
    assert nets_match((ipaddress.ip_network("0.0.0.0/0"),), side()) is None


POLICY = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: p}
spec:
  ingress:
  - {action: Allow, protocol: TCP, source: {nets: [10.0.0.0/8]}, destination: {ports: [80, "8000:8080"]}}
  - {action: Allow, protocol: UDP, icmp: {type: 8}}
"""


def test_a_rule_says_why_it_does_not_match_and_what_it_could_not_decide() -> None:
    (cp,) = (compile_policy(p) for p in policies(POLICY).policies)
    tcp_rule, udp_rule = cp.ingress
    matcher = Matcher()
    notes: set[str] = set()
    outside = side((ipaddress.ip_address("192.168.0.1"),))
    inside = side((ipaddress.ip_address("10.1.2.3"),))
    assert matcher.rule(tcp_rule, cp.policy, inside, side(), 6, 8080, notes) == (True, "")
    assert matcher.rule(tcp_rule, cp.policy, inside, side(), 17, 8080, notes) == (
        False,
        "protocol udp is not tcp",
    )
    assert matcher.rule(tcp_rule, cp.policy, outside, side(), 6, 80, notes) == (
        False,
        "source: the IP of the peer is not in 10.0.0.0/8",
    )
    assert matcher.rule(tcp_rule, cp.policy, inside, side(), 6, 443, notes) == (
        False,
        "destination: port 443 is not in 80, 8000:8080",
    )
    assert matcher.rule(tcp_rule, cp.policy, side(ip_class="pvt"), side(), 6, 80, notes) == (
        None,
        "the IP of the peer is not known (masked in the flow log)",
    )
    assert notes == set()
    assert matcher.rule(udp_rule, cp.policy, inside, side(), 17, 53, notes) == (True, "")
    assert notes == {
        "GlobalNetworkPolicy p: ICMP type/code criteria are not evaluated (flow logs carry no ICMP type)"
    }
