"""networking.k8s.io/v1 NetworkPolicy manifests (flowlens.policy.manifests.networking)."""

from __future__ import annotations

from pathlib import Path

from flowlens.policy import load_policies
from flowlens.policy.model import NamedPort, PortRange
from tests.policy.helpers import K8S_WEB as K8S
from tests.policy.helpers import write


def test_kubernetes_defaults_tcp_order_1000_tier_default_and_ports(tmp_path: Path) -> None:
    ps = load_policies(write(tmp_path / "p.yaml", K8S))
    p = ps.policies[0]
    assert (p.kind, p.tier, p.order, p.types) == ("KubernetesNetworkPolicy", "default", 1000.0, ("Ingress",))
    tcp, udp = p.ingress
    assert tcp.protocol == 6 and tcp.destination.ports == (PortRange(80, 80), NamedPort("http"))
    assert udp.protocol == 17 and udp.destination.ports == (PortRange(5000, 5010),)
    assert str(p.selector) == '(projectcalico.org/orchestrator == "k8s" && app == "web")'
