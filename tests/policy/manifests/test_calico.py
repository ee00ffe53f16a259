"""projectcalico.org/v3 manifests (flowlens.policy.manifests.calico): defaults, sets, host
endpoints and staged actions."""

from __future__ import annotations

import math
from pathlib import Path

from flowlens.policy import load_policies
from tests.policy.helpers import write


def test_calico_defaults_tier_default_order_infinite_and_selector_all(tmp_path: Path) -> None:
    ps = load_policies(
        write(
            tmp_path / "p.yaml",
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: n}\nspec: {}\n",
        )
    )
    p = ps.policies[0]
    assert (p.namespace, p.tier, p.types, str(p.selector)) == ("default", "default", ("Ingress",), "all()")
    assert math.isinf(p.order)


def test_network_sets_host_endpoints_and_staged_actions_load(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: g, labels: {a: b}}
spec: {nets: [1.2.3.4/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: n, namespace: x}
spec: {nets: [10.0.0.0/8]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: h}
spec: {node: n1, expectedIPs: [192.168.0.1], ports: [{name: ssh, port: 22, protocol: TCP}]}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: s}
spec: {stagedAction: delete}
""",
    )
    ps = load_policies(path)
    assert [(s.namespace, s.name, str(s.nets[0])) for s in ps.network_sets] == [
        (None, "g", "1.2.3.0/24"),
        ("x", "n", "10.0.0.0/8"),
    ]
    assert ps.host_endpoints[0].ports[0].port == 22
    assert ps.policies[0].staged_action == "Delete" and ps.policies[0].staged
