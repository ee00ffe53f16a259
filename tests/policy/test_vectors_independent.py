"""Independent probes of the policy engine, derived from the rules only (docs/policy/rulebook.md,
rulebook K1-K15, L1-L3, C1-C11).

Each scenario is a policy set written as a user would write it (YAML manifests) over one small
cluster (a ``kubectl get namespaces,pods,serviceaccounts -A -o yaml`` List read with
``load_inventory``). Each probe is one connection (rulebook V1: egress at the source and ingress
at the destination) with the verdict the rulebook gives. The scenarios follow the upstream sources
the rulebook cites: the kubernetes-network-policy-recipes, the e2e netpol tests and the Calico docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlens.policy import Connection, Endpoint, Evaluator, Inventory, load_inventory, policies_from_objects
from flowlens.policy.model import ContainerPort, normalize_protocol

# ----------------------------------------------------------------------------------------------
# The cluster

NAMESPACES: dict[str, dict[str, str]] = {
    "default": {},
    "prod": {"env": "prod", "team": "a"},
    "dev": {"env": "dev", "shape": "circle"},
    "kube-system": {},
    "other": {"team": "b"},
}
SERVICE_ACCOUNTS: dict[tuple[str, str], dict[str, str]] = {
    **{(ns, "default"): {} for ns in NAMESPACES},
    ("prod", "api-sa"): {"team": "backend", "role": "api"},
    ("prod", "mon-sa"): {"team": "ops"},
}
# namespace/name, IP, labels, service account, named ports (name, protocol, port)
PODS: list[tuple[str, str, dict[str, str], str, list[tuple[str, str, int]]]] = [
    ("default/web-1", "10.0.1.1", {"app": "web"}, "default", []),
    ("default/client-1", "10.0.1.3", {"app": "client"}, "default", []),
    ("default/foo-1", "10.0.1.4", {"app": "foo"}, "default", []),
    ("prod/web-1", "10.0.2.1", {"app": "web", "tier": "frontend"}, "default", [("http", "TCP", 8080)]),
    ("prod/api-1", "10.0.2.2", {"app": "api"}, "api-sa", []),
    ("prod/cli-1", "10.0.2.3", {"app": "client"}, "default", []),
    ("prod/mon-1", "10.0.2.4", {"role": "monitoring"}, "mon-sa", []),
    ("dev/web-1", "10.0.3.1", {"app": "web"}, "default", [("http", "TCP", 80)]),
    ("dev/cli-1", "10.0.3.2", {"app": "client", "role": "monitoring"}, "default", []),
    (
        "kube-system/kube-dns-1",
        "10.0.4.1",
        {"k8s-app": "kube-dns"},
        "default",
        [("dns", "UDP", 53), ("dns-tcp", "TCP", 53)],
    ),
    ("other/cli-1", "10.0.5.1", {"app": "client"}, "default", []),
    # dual-stack pods: the IPs are comma-separated, the first is the pod's primary IP
    ("other/ds-1", "10.0.5.9,fd00:5::9", {"app": "ds"}, "default", []),
    ("other/ds-2", "10.0.5.10,fd00:5::10", {"app": "ds-client"}, "default", []),
]
HEP = "10.1.0.1"  # node-1's host endpoint, declared in the scenarios that use it


def kubectl_list() -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for ns, labels in NAMESPACES.items():
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {**labels, "kubernetes.io/metadata.name": ns}},
            }
        )
    for (ns, name), labels in SERVICE_ACCOUNTS.items():
        items.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
            }
        )
    for ref, ip, labels, sa, ports in PODS:
        ns, name = ref.split("/")
        container: dict[str, Any] = {"name": "main", "image": "nginx"}
        if ports:
            container["ports"] = [{"name": n, "protocol": p, "containerPort": c} for n, p, c in ports]
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"serviceAccountName": sa, "nodeName": "node-1", "containers": [container]},
                "status": {
                    "phase": "Running",
                    "podIP": ip.split(",")[0],
                    "podIPs": [{"ip": i} for i in ip.split(",")],
                },
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


# ----------------------------------------------------------------------------------------------
# Manifest builders (YAML text, flow style for the specs)


def knp(name: str, ns: str, spec: str, kind: str = "NetworkPolicy") -> str:
    api = "networking.k8s.io/v1" if kind == "NetworkPolicy" else "projectcalico.org/v3"
    return (
        f"---\napiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"
    )


def np(name: str, ns: str, spec: str, kind: str = "NetworkPolicy") -> str:
    return f"---\napiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"


def gnp(name: str, spec: str, kind: str = "GlobalNetworkPolicy") -> str:
    return f"---\napiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def tier(name: str, spec: str = "{}") -> str:
    return f"---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {spec}\n"


HOST_ENDPOINT = (
    "---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\n"
    "metadata: {name: node-1-eth0, labels: {role: node}}\n"
    f"spec: {{node: node-1, interfaceName: eth0, expectedIPs: ['{HEP}']}}\n"
)
WEB = "{matchLabels: {app: web}}"
API = "{matchLabels: {app: api}}"
DENY_ALL_PROD = knp("deny-all", "prod", "{podSelector: {}, policyTypes: [Ingress]}")
# A host endpoint with no policy and no profile denies (Calico's host endpoint default), so the
# scenarios that send from the host endpoint let it send.
HOSTS_OUT = gnp("hosts-out", "{selector: \"role == 'node'\", egress: [{action: Allow}]}")
DNS_PORTS = "[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"

SCENARIOS: dict[str, str] = {
    "none": "",
    # --- recipes (ahmetb/kubernetes-network-policy-recipes)
    "r01-deny-all-to-app": knp("web-deny-all", "prod", f"{{podSelector: {WEB}, ingress: []}}"),
    "r02-limit-to-app": knp(
        "api-allow",
        "prod",
        f"{{podSelector: {API}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}]}}",
    ),
    "r02a-allow-all-to-app": knp("web-allow-all", "prod", f"{{podSelector: {WEB}, ingress: [{{}}]}}")
    + knp("default-deny", "prod", "{podSelector: {}, ingress: []}"),
    "r02a-selector-pair": knp(
        "web-allow-pods",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{}}, namespaceSelector: {{}}}}]}}]}}",
    ),
    "r03-deny-all-in-ns": knp("default-deny-all", "prod", "{podSelector: {}, ingress: []}"),
    "r04-deny-other-ns": knp(
        "deny-from-other-namespaces", "prod", "{podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}"
    ),
    "r05-allow-all-ns": knp(
        "web-allow-all-namespaces",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{}}}}]}}]}}",
    ),
    "r06-ns-by-label": knp(
        "web-allow-dev",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: dev}}}}}}]}}]}}",
    ),
    "r06-own-ns-not-matching": knp(
        "web-allow-prod",
        "dev",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: prod}}}}}}]}}]}}",
    ),
    "r07-and": knp(
        "web-allow-dev-monitoring",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: dev}}}}, "
        "podSelector: {matchLabels: {role: monitoring}}}]}]}",
    ),
    "r07-or": knp(
        "web-allow-dev-or-monitoring",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: dev}}}}}}, "
        "{podSelector: {matchLabels: {role: monitoring}}}]}]}",
    ),
    "r08-allow-external": knp(
        "web-allow-external", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 80}}]}}]}}"
    ),
    "r09-port": knp(
        "api-allow-5000",
        "prod",
        f"{{podSelector: {API}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}], "
        "ports: [{port: 5000, protocol: TCP}]}]}",
    ),
    "r10-multiple-selectors": knp(
        "api-allow-many",
        "prod",
        f"{{podSelector: {API}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}, "
        "{podSelector: {matchLabels: {app: web}}}]}]}",
    ),
    "r11-deny-egress": knp(
        "cli-deny-egress",
        "prod",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: []}",
    ),
    "r11-allow-dns-egress": knp(
        "cli-allow-dns",
        "prod",
        f"{{podSelector: {{matchLabels: {{app: client}}}}, policyTypes: [Egress], egress: [{{ports: {DNS_PORTS}}}]}}",
    ),
    "r12-deny-egress-ns": knp("default-deny-egress", "prod", "{podSelector: {}, policyTypes: [Egress]}"),
    "r14-deny-external-egress": knp(
        "foo-deny-external-egress",
        "default",
        "{podSelector: {matchLabels: {app: foo}}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: "
        "{matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}], "
        f"ports: {DNS_PORTS}}}]}}",
    ),
    # --- rulebook K2/K3 policyTypes defaulting
    "k2-egress-rules-only": knp(
        "cli-egress",
        "default",
        "{podSelector: {matchLabels: {app: client}}, egress: [{to: [{ipBlock: {cidr: 8.8.8.8/32}}]}]}",
    ),
    "k2-empty-egress-list": knp(
        "cli-empty-egress", "default", "{podSelector: {matchLabels: {app: client}}, egress: []}"
    ),
    "k2-empty-policytypes": knp(
        "cli-egress-types-empty",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [], egress: [{to: [{ipBlock: {cidr: 8.8.8.8/32}}]}]}",
    ),
    "k3-egress-only-type": knp(
        "cli-egress-open",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{}]}",
    ),
    "k3-ingress-type-ignores-egress": knp(
        "cli-ingress-only",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Ingress], ingress: [{}], egress: [{to: [{ipBlock: {cidr: 8.8.8.8/32}}]}]}",
    ),
    # --- rulebook K4 union
    "k4-union": knp(
        "web-from-client",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}]}}",
    )
    + knp("web-from-api", "prod", f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {API}}}]}}]}}")
    + knp("isolate", "prod", "{podSelector: {}}"),
    # --- rulebook K5 empty from
    "k5-empty-from-with-ports": knp(
        "web-443", "prod", f"{{podSelector: {WEB}, ingress: [{{from: [], ports: [{{port: 443}}]}}]}}"
    ),
    # --- rulebook K11 ipBlock
    "k11-ipblock-except": knp(
        "web-cidr",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{ipBlock: {{cidr: 10.0.2.0/24, except: [10.0.2.3/32]}}}}]}}]}}",
    ),
    "k11-except-union": knp(
        "web-cidr",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{ipBlock: {{cidr: 10.0.2.0/24, except: [10.0.2.3/32]}}}}]}}]}}",
    )
    + knp(
        "web-clients",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}]}}",
    ),
    "k11-world-except-cluster": knp(
        "web-world",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{ipBlock: {{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}}}]}}]}}",
    ),
    "k11-egress-pod-cidr": knp(
        "cli-to-web-ip",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.2.1/32}}]}]}",
    ),
    "k11-egress-except-ns": knp(
        "cli-egress-except",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.2.0/24]}}]}]}",
    ),
    # --- rulebook K12 ports
    "k12-default-tcp": knp("web-53", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 53}}]}}]}}"),
    "k12-protocol-no-port": knp(
        "web-udp", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{protocol: UDP}}]}}]}}"
    ),
    "k12-endport": knp(
        "web-range", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 8000, endPort: 8100}}]}}]}}"
    ),
    "k12-endport-egress": knp(
        "cli-range",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP, port: 30000, endPort: 30010}]}]}",
    ),
    # --- rulebook K13 named ports
    "k13-named-ingress": knp("web-http", "prod", "{podSelector: {}, ingress: [{ports: [{port: http}]}]}"),
    "k13-named-egress": knp(
        "cli-http",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}",
    ),
    "k13-named-udp": knp(
        "cli-dns",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{port: dns, protocol: UDP}]}]}",
    ),
    "k13-named-wrong-protocol": knp(
        "cli-dns-tcp",
        "default",
        "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{port: dns}]}]}",
    ),
    # --- rulebook K14 SCTP/UDP
    "k14-sctp": knp(
        "web-sctp", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{protocol: SCTP, port: 80}}]}}]}}"
    ),
    "k14-udp": knp(
        "web-udp80", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{protocol: UDP, port: 80}}]}}]}}"
    ),
    # --- rulebook K15: namespace by name; rulebook K8: own namespace
    "k15-ns-by-name": knp(
        "web-from-dev",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: dev}}}}}}]}}]}}",
    ),
    "k15-unlabelled-ns": knp(
        "web-from-default",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: default}}}}}}]}}]}}",
    ),
    # --- rulebook L1 LabelSelector
    "l1-notin": knp(
        "web-notin",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: app, operator: NotIn, values: [client]}}]}}}}]}}]}}",
    ),
    "l1-in": knp(
        "web-in",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: app, operator: In, values: [client, api]}}]}}}}]}}]}}",
    ),
    "l1-exists": knp(
        "web-exists",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: role, operator: Exists}}]}}}}]}}]}}",
    ),
    "l1-doesnotexist": knp(
        "web-dne",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: app, operator: DoesNotExist}}]}}}}]}}]}}",
    ),
    "l1-labels-and-expressions": knp(
        "web-and",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: client}}, "
        "matchExpressions: [{key: role, operator: Exists}]}}]}]}",
    ),
    "l1-ns-notin": knp(
        "web-ns-notin",
        "prod",
        f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchExpressions: [{{key: env, operator: NotIn, values: [prod]}}]}}}}]}}]}}",
    ),
}


def calico_src_selector(name: str, expr: str) -> str:
    return np(
        name,
        "prod",
        f'{{selector: "app == \'web\'", ingress: [{{action: Allow, source: {{selector: "{expr}"}}}}]}}',
    )


SCENARIOS.update(
    {
        # --- rulebook L2 Calico selector grammar (namespaced policy: sources limited to prod)
        "l2-ne": calico_src_selector("ne", "app != 'client'"),
        "l2-notin": calico_src_selector("notin", "app not in {'client', 'web'}"),
        "l2-starts": calico_src_selector("starts", "app starts with 'cl'"),
        "l2-ends": calico_src_selector("ends", "app ends with 'pi'"),
        "l2-contains": calico_src_selector("contains", "app contains 'lie'"),
        "l2-precedence": calico_src_selector("prec", "app == 'api' || app == 'client' && has(role)"),
        "l2-not-binds-tight": calico_src_selector("not", "!has(app) && role == 'monitoring'"),
        # --- rulebook L3 implicit labels (GNP: any namespace)
        "l3-namespace-label": gnp(
            "ns-label",
            "{selector: \"projectcalico.org/namespace == 'dev' && app == 'web'\", ingress: [{action: Deny, source: "
            "{selector: \"projectcalico.org/serviceaccount == 'api-sa'\"}}, {action: Allow}]}",
        ),
        "l3-orchestrator": gnp(
            "orch",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"projectcalico.org/orchestrator == 'k8s'\"}}]}",
        ),
        "l3-ns-name": gnp(
            "ns-name",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: \"projectcalico.org/name == 'dev'\"}}]}",
        ),
        "l3-sa-name-label": gnp(
            "sa-name",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {selector: \"projectcalico.org/name == 'api-sa'\"}}}]}",
        ),
        # --- rulebook C1 tiers
        "c1-tier-before-default": tier("sec", "{order: 100}")
        + gnp(
            "sec.deny-dev",
            "{tier: sec, selector: all(), ingress: [{action: Deny, source: {namespaceSelector: \"env == 'dev'\"}}, {action: Pass}]}",
        )
        + knp(
            "allow-all-ns",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{}}}}]}}]}}",
        ),
        "c1-tier-without-order-last": tier("late")
        + gnp("late.deny-web", "{tier: late, selector: \"app == 'web'\", ingress: [{action: Deny}]}")
        + np(
            "allow-cli",
            "prod",
            "{order: 100, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c1-tier-order-tie-by-name": tier("bb", "{order: 100}")
        + tier("aa", "{order: 100}")
        + gnp("bb.allow", "{tier: bb, selector: \"app == 'web'\", ingress: [{action: Allow}]}")
        + gnp(
            "aa.deny",
            "{tier: aa, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'client'\"}}, {action: Pass}]}",
        ),
        # --- rulebook C2 per-direction applicability
        "c2-ingress-only-tier": tier("sec", "{order: 100}")
        + gnp(
            "sec.web-in",
            "{tier: sec, selector: \"app == 'web'\", types: [Ingress], ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c2-both-types-no-egress-rules": tier("sec", "{order: 100}")
        + gnp(
            "sec.web-both",
            "{tier: sec, selector: \"app == 'web'\", types: [Ingress, Egress], ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        # --- rulebook C3 order within a tier
        "c3-tie-deny-first": gnp(
            "a-deny", "{order: 100, selector: \"app == 'web'\", ingress: [{action: Deny}]}"
        )
        + gnp("b-allow", "{order: 100, selector: \"app == 'web'\", ingress: [{action: Allow}]}"),
        "c3-tie-allow-first": gnp(
            "a-allow", "{order: 100, selector: \"app == 'web'\", ingress: [{action: Allow}]}"
        )
        + gnp("b-deny", "{order: 100, selector: \"app == 'web'\", ingress: [{action: Deny}]}"),
        "c3-no-order-last": gnp("x-deny", "{selector: \"app == 'web'\", ingress: [{action: Deny}]}")
        + gnp("y-allow", "{order: 5000, selector: \"app == 'web'\", ingress: [{action: Allow}]}"),
        "c3-float-order": gnp(
            "p-deny", "{order: 100.5, selector: \"app == 'web'\", ingress: [{action: Deny}]}"
        )
        + gnp(
            "q-allow",
            "{order: 100.25, selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP}]}",
        ),
        "c3-rule-order": gnp(
            "rules",
            "{selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'api'\"}}, {action: Allow}]}",
        ),
        # --- rulebook C4 actions
        "c4-log-continues": gnp(
            "log", "{selector: \"app == 'web'\", ingress: [{action: Log}, {action: Allow, protocol: TCP}]}"
        ),
        "c4-pass-skips-tier": tier("sec", "{order: 100}")
        + gnp(
            "sec.p1",
            "{tier: sec, order: 1, selector: \"app == 'web'\", ingress: [{action: Pass, source: {selector: \"app == 'client'\"}}]}",
        )
        + gnp("sec.p2", "{tier: sec, order: 2, selector: \"app == 'web'\", ingress: [{action: Deny}]}"),
        "c4-pass-to-next-tier": tier("sec", "{order: 100}")
        + tier("sec2", "{order: 200}")
        + gnp("sec.p1", "{tier: sec, selector: \"app == 'web'\", ingress: [{action: Pass}]}")
        + gnp(
            "sec2.p2",
            "{tier: sec2, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'api'\"}}, {action: Allow}]}",
        ),
        # --- rulebook C5 tier default action
        "c5-default-pass": tier("pt", "{order: 100, defaultAction: Pass}")
        + gnp(
            "pt.web",
            "{tier: pt, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'api'\"}}]}",
        ),
        "c5-default-pass-then-k8s": tier("pt", "{order: 100, defaultAction: Pass}")
        + gnp(
            "pt.web",
            "{tier: pt, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'api'\"}}]}",
        )
        + DENY_ALL_PROD,
        "c5-default-deny": tier("dt", "{order: 100}")
        + gnp(
            "dt.web",
            "{tier: dt, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'api'\"}}]}",
        ),
        # --- rulebook C7 Kubernetes policies at order 1000 in the default tier
        "c7-deny-before-k8s": knp(
            "allow-cli",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}]}}",
        )
        + np(
            "deny-cli",
            "prod",
            "{order: 500, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c7-deny-after-k8s": knp(
            "allow-cli",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}]}}",
        )
        + np(
            "deny-cli-late",
            "prod",
            "{order: 1500, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c7-later-allow": DENY_ALL_PROD
        + np(
            "allow-cli",
            "prod",
            "{order: 2000, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c7-later-allow-no-order": DENY_ALL_PROD
        + gnp(
            "allow-dev",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: \"env == 'dev'\"}}]}",
        ),
        "c7-pass-before-k8s": DENY_ALL_PROD
        + gnp(
            "pass-clients",
            "{order: 100, selector: all(), ingress: [{action: Pass, source: {selector: \"app == 'client'\"}}]}",
        ),
        # --- rulebook C8 types defaulting
        "c8-egress-only-rules": np(
            "cli-egress",
            "prod",
            "{selector: \"app == 'client'\", egress: [{action: Deny, destination: {nets: [8.8.8.8/32]}}, {action: Allow}]}",
        ),
        "c8-no-rules": np("cli-isolate", "prod", "{selector: \"app == 'client'\"}"),
        "c8-explicit-both": np(
            "cli-both",
            "prod",
            "{selector: \"app == 'client'\", types: [Ingress, Egress], ingress: [{action: Allow}]}",
        ),
        # --- rulebook C9 policy selection
        "c9-np-own-namespace": np(
            "deny-web", "prod", "{selector: \"app == 'web'\", ingress: [{action: Deny}]}"
        ),
        "c9-gnp-namespace-selector": gnp(
            "deny-prod-web",
            "{selector: \"app == 'web'\", namespaceSelector: \"env == 'prod'\", ingress: [{action: Deny}]}",
        ),
        "c9-gnp-namespace-selector-only": gnp(
            "deny-team-a", "{namespaceSelector: \"team == 'a'\", ingress: [{action: Deny}]}"
        ),
        "c9-np-sa-selector": np(
            "deny-backend",
            "prod",
            "{serviceAccountSelector: \"team == 'backend'\", ingress: [{action: Deny}]}",
        ),
        "c9-gnp-sa-selector-by-name": gnp(
            "deny-mon-sa",
            "{serviceAccountSelector: \"projectcalico.org/name == 'mon-sa'\", ingress: [{action: Deny}]}",
        ),
        # --- rulebook C10 protocol and empty entity rules
        "c10-not-protocol": np(
            "web-notproto",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Deny, notProtocol: UDP}, {action: Allow}]}",
        ),
        "c10-protocol-number": np(
            "web-proto17", "prod", "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: 17}]}"
        ),
        "c10-no-source-matches-external": np(
            "web-any", "prod", "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP}]}"
        ),
        # --- rulebook C11 entity rules
        "c11-nets": gnp(
            "nets",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {nets: [8.8.8.0/24, 10.0.2.0/24]}}]}",
        ),
        "c11-not-nets": gnp(
            "notnets",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {notNets: [10.0.0.0/8]}}]}",
        ),
        "c11-port-range": gnp(
            "range",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, destination: {ports: ['8000:8100', 443]}}]}",
        ),
        "c11-not-ports": gnp(
            "notports",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, destination: {notPorts: [22]}}]}",
        ),
        "c11-named-port-ingress": gnp(
            "named",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]}",
        ),
        "c11-named-port-egress": np(
            "cli-http",
            "default",
            "{selector: \"app == 'client'\", egress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]}",
        ),
        "c11-np-selector-all": np(
            "web-all",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: all()}}]}",
        ),
        "c11-gnp-selector-all": gnp(
            "web-all", "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: all()}}]}"
        ),
        "c11-gnp-not-selector": gnp(
            "web-not-client",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {notSelector: \"app == 'client'\"}}]}",
        ),
        "c11-np-not-selector": np(
            "web-not-client",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {notSelector: \"app == 'client'\"}}]}",
        ),
        "c11-np-ns-selector-all": HOST_ENDPOINT
        + np(
            "web-any-ns",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: all()}}]}",
        ),
        "c11-gnp-ns-selector-global": HOST_ENDPOINT
        + HOSTS_OUT
        + gnp(
            "web-from-hosts",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: global()}}]}",
        ),
        "c11-np-ns-and-selector": np(
            "web-circle",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: \"shape == 'circle'\", selector: \"app == 'client'\"}}]}",
        ),
        "c11-same-name-replaces": np(
            "allow-tcp-6379",
            "prod",
            "{selector: \"app == 'api'\", ingress: [{action: Allow, protocol: TCP, source: {selector: \"app == 'client'\"}, destination: {ports: [6379]}}]}",
        )
        + np(
            "allow-tcp-6379",
            "prod",
            "{selector: \"app == 'api'\", ingress: [{action: Allow, protocol: TCP, source: {selector: \"app == 'client'\", "
            "namespaceSelector: \"shape == 'circle'\"}, destination: {ports: [6379]}}]}",
        ),
        "c11-sa-names": gnp(
            "web-from-api-sa",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {names: [api-sa]}}}]}",
        ),
        "c11-sa-selector-not-pod-labels": gnp(
            "web-from-sa-role",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {selector: \"role in {'monitoring', 'api'}\"}}}]}",
        ),
        "c11-sa-names-and-selector": gnp(
            "web-sa-and",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {names: [api-sa, mon-sa], selector: \"team == 'ops'\"}}}]}",
        ),
        "c11-np-sa-scope": np(
            "web-sa-scope",
            "dev",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {names: [api-sa]}}}]}",
        ),
        # --- host endpoints
        "hep-gnp": HOST_ENDPOINT
        + gnp(
            "hep-ssh",
            "{selector: \"role == 'node'\", ingress: [{action: Allow, protocol: TCP, destination: {ports: [22]}}]}",
        ),
        "hep-pod-egress": HOST_ENDPOINT
        + gnp(
            "hep-ssh",
            "{selector: \"role == 'node'\", ingress: [{action: Allow, protocol: TCP, destination: {ports: [22]}}]}",
        )
        + gnp(
            "cli-to-nodes",
            "{selector: \"app == 'client' && projectcalico.org/namespace == 'default'\", "
            "egress: [{action: Allow, destination: {selector: \"role == 'node'\"}}]}",
        ),
        # --- staged policies
        "staged-np-deny": np(
            "sdeny",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Deny}]}",
            kind="StagedNetworkPolicy",
        ),
        "staged-knp-deny-all": knp(
            "sdeny-all",
            "prod",
            "{podSelector: {}, policyTypes: [Ingress]}",
            kind="StagedKubernetesNetworkPolicy",
        ),
        "staged-gnp-allow": DENY_ALL_PROD
        + gnp(
            "sallow",
            "{order: 10, selector: \"app == 'web'\", ingress: [{action: Allow}]}",
            kind="StagedGlobalNetworkPolicy",
        ),
    }
)

# ----------------------------------------------------------------------------------------------
# Probes: (scenario, source, destination, "proto/port", expected verdict)

EXT, EXT2, PRIV = "8.8.8.8", "203.0.113.5", "192.168.1.10"
W, A, C, M = "prod/web-1", "prod/api-1", "prod/cli-1", "prod/mon-1"
DW, DC, DNS = "dev/web-1", "dev/cli-1", "kube-system/kube-dns-1"
CW, CC, FOO, OC = "default/web-1", "default/client-1", "default/foo-1", "other/cli-1"

PROBES: list[tuple[str, str, str, str, str]] = [
    # rulebook C6: nothing selects -> profile allows
    ("none", C, W, "tcp/80", "allow"),
    ("none", EXT, W, "udp/53", "allow"),
    ("none", W, EXT, "tcp/443", "allow"),
    # recipe 01
    ("r01-deny-all-to-app", C, W, "tcp/80", "deny"),
    ("r01-deny-all-to-app", CC, W, "tcp/80", "deny"),
    ("r01-deny-all-to-app", EXT, W, "tcp/80", "deny"),
    ("r01-deny-all-to-app", C, A, "tcp/80", "allow"),
    ("r01-deny-all-to-app", W, EXT, "tcp/80", "allow"),
    ("r01-deny-all-to-app", DC, DW, "tcp/80", "allow"),
    # recipe 02
    ("r02-limit-to-app", C, A, "tcp/80", "allow"),
    ("r02-limit-to-app", C, A, "udp/53", "allow"),
    ("r02-limit-to-app", W, A, "tcp/80", "deny"),
    ("r02-limit-to-app", CC, A, "tcp/80", "deny"),
    ("r02-limit-to-app", OC, A, "tcp/80", "deny"),
    ("r02-limit-to-app", EXT, A, "tcp/80", "deny"),
    # recipe 02a and rulebook D2
    ("r02a-allow-all-to-app", EXT, W, "tcp/443", "allow"),
    ("r02a-allow-all-to-app", CC, W, "udp/5353", "allow"),
    ("r02a-allow-all-to-app", CC, A, "tcp/80", "deny"),
    ("r02a-selector-pair", CC, W, "tcp/80", "allow"),
    ("r02a-selector-pair", OC, W, "tcp/80", "allow"),
    ("r02a-selector-pair", EXT, W, "tcp/80", "deny"),
    ("r02a-selector-pair", PRIV, W, "tcp/80", "deny"),
    # recipe 03
    ("r03-deny-all-in-ns", C, A, "tcp/80", "deny"),
    ("r03-deny-all-in-ns", W, A, "tcp/80", "deny"),
    ("r03-deny-all-in-ns", A, EXT, "tcp/443", "allow"),
    ("r03-deny-all-in-ns", A, CW, "tcp/80", "allow"),
    # recipe 04
    ("r04-deny-other-ns", C, W, "tcp/80", "allow"),
    ("r04-deny-other-ns", CC, W, "tcp/80", "deny"),
    ("r04-deny-other-ns", DC, W, "tcp/80", "deny"),
    ("r04-deny-other-ns", EXT, W, "tcp/80", "deny"),
    # recipe 05 (rulebook K8, K10)
    ("r05-allow-all-ns", CC, W, "tcp/80", "allow"),
    ("r05-allow-all-ns", C, W, "tcp/80", "allow"),
    ("r05-allow-all-ns", EXT, W, "tcp/80", "deny"),
    ("r05-allow-all-ns", PRIV, W, "tcp/80", "deny"),
    # recipe 06 (rulebook K8)
    ("r06-ns-by-label", DC, W, "tcp/80", "allow"),
    ("r06-ns-by-label", DW, W, "tcp/80", "allow"),
    ("r06-ns-by-label", C, W, "tcp/80", "deny"),
    ("r06-ns-by-label", CC, W, "tcp/80", "deny"),
    ("r06-own-ns-not-matching", DC, DW, "tcp/80", "deny"),
    ("r06-own-ns-not-matching", C, DW, "tcp/80", "allow"),
    # recipe 07 (rulebook K9 vs K6)
    ("r07-and", DC, W, "tcp/80", "allow"),
    ("r07-and", DW, W, "tcp/80", "deny"),
    ("r07-and", M, W, "tcp/80", "deny"),
    ("r07-or", DW, W, "tcp/80", "allow"),
    ("r07-or", M, W, "tcp/80", "allow"),
    ("r07-or", CC, W, "tcp/80", "deny"),
    ("r07-or", OC, W, "tcp/80", "deny"),
    # recipe 08
    ("r08-allow-external", EXT, W, "tcp/80", "allow"),
    ("r08-allow-external", EXT, W, "tcp/443", "deny"),
    ("r08-allow-external", EXT, W, "udp/80", "deny"),
    ("r08-allow-external", CC, W, "tcp/80", "allow"),
    # recipe 09
    ("r09-port", C, A, "tcp/5000", "allow"),
    ("r09-port", C, A, "tcp/5001", "deny"),
    ("r09-port", C, A, "udp/5000", "deny"),
    ("r09-port", W, A, "tcp/5000", "deny"),
    # recipe 10
    ("r10-multiple-selectors", W, A, "tcp/80", "allow"),
    ("r10-multiple-selectors", C, A, "tcp/80", "allow"),
    ("r10-multiple-selectors", M, A, "tcp/80", "deny"),
    # recipe 11
    ("r11-deny-egress", C, W, "tcp/80", "deny"),
    ("r11-deny-egress", C, EXT, "tcp/443", "deny"),
    ("r11-deny-egress", W, C, "tcp/80", "allow"),
    ("r11-allow-dns-egress", C, DNS, "udp/53", "allow"),
    ("r11-allow-dns-egress", C, DNS, "tcp/53", "allow"),
    ("r11-allow-dns-egress", C, EXT, "udp/53", "allow"),
    ("r11-allow-dns-egress", C, W, "tcp/80", "deny"),
    ("r11-allow-dns-egress", W, C, "tcp/80", "allow"),
    # recipe 12
    ("r12-deny-egress-ns", W, CW, "tcp/80", "deny"),
    ("r12-deny-egress-ns", CW, W, "tcp/80", "allow"),
    # recipe 14 (rulebook D1: in-cluster web is denied too)
    ("r14-deny-external-egress", FOO, CW, "tcp/80", "deny"),
    ("r14-deny-external-egress", FOO, DNS, "udp/53", "allow"),
    ("r14-deny-external-egress", FOO, DNS, "tcp/53", "allow"),
    ("r14-deny-external-egress", FOO, EXT, "udp/53", "deny"),
    ("r14-deny-external-egress", FOO, EXT, "tcp/443", "deny"),
    ("r14-deny-external-egress", CC, EXT, "tcp/443", "allow"),
    # rulebook K2, K3
    ("k2-egress-rules-only", CC, EXT, "tcp/443", "allow"),
    ("k2-egress-rules-only", CC, EXT2, "tcp/443", "deny"),
    ("k2-egress-rules-only", CW, CC, "tcp/80", "deny"),
    ("k2-empty-egress-list", CC, EXT2, "tcp/443", "allow"),
    ("k2-empty-egress-list", CW, CC, "tcp/80", "deny"),
    ("k2-empty-policytypes", CW, CC, "tcp/80", "deny"),
    ("k2-empty-policytypes", CC, EXT, "tcp/443", "allow"),
    ("k2-empty-policytypes", CC, EXT2, "tcp/443", "deny"),
    ("k3-egress-only-type", CW, CC, "tcp/80", "allow"),
    ("k3-egress-only-type", CC, EXT2, "udp/9", "allow"),
    ("k3-ingress-type-ignores-egress", CC, EXT2, "tcp/443", "allow"),
    ("k3-ingress-type-ignores-egress", EXT2, CC, "tcp/443", "allow"),
    # rulebook K4
    ("k4-union", C, W, "tcp/80", "allow"),
    ("k4-union", A, W, "tcp/80", "allow"),
    ("k4-union", M, W, "tcp/80", "deny"),
    ("k4-union", C, A, "tcp/80", "deny"),
    # rulebook K5
    ("k5-empty-from-with-ports", EXT, W, "tcp/443", "allow"),
    ("k5-empty-from-with-ports", DC, W, "tcp/443", "allow"),
    ("k5-empty-from-with-ports", DC, W, "tcp/80", "deny"),
    # rulebook K11
    ("k11-ipblock-except", A, W, "tcp/80", "allow"),
    ("k11-ipblock-except", C, W, "tcp/80", "deny"),
    ("k11-ipblock-except", "10.0.2.200", W, "tcp/80", "allow"),
    ("k11-ipblock-except", CC, W, "tcp/80", "deny"),
    ("k11-except-union", C, W, "tcp/80", "allow"),
    ("k11-except-union", M, W, "tcp/80", "allow"),
    ("k11-world-except-cluster", EXT, W, "tcp/80", "allow"),
    ("k11-world-except-cluster", PRIV, W, "tcp/80", "allow"),
    ("k11-world-except-cluster", CC, W, "tcp/80", "deny"),
    ("k11-world-except-cluster", C, W, "tcp/80", "deny"),
    ("k11-egress-pod-cidr", CC, W, "tcp/80", "allow"),
    ("k11-egress-pod-cidr", CC, A, "tcp/80", "deny"),
    ("k11-egress-except-ns", CC, W, "tcp/80", "deny"),
    ("k11-egress-except-ns", CC, DW, "tcp/80", "allow"),
    ("k11-egress-except-ns", CC, EXT, "tcp/80", "deny"),
    # rulebook K12
    ("k12-default-tcp", EXT, W, "tcp/53", "allow"),
    ("k12-default-tcp", EXT, W, "udp/53", "deny"),
    ("k12-protocol-no-port", EXT, W, "udp/9999", "allow"),
    ("k12-protocol-no-port", EXT, W, "tcp/9999", "deny"),
    ("k12-endport", C, W, "tcp/8000", "allow"),
    ("k12-endport", C, W, "tcp/8050", "allow"),
    ("k12-endport", C, W, "tcp/8100", "allow"),
    ("k12-endport", C, W, "tcp/8101", "deny"),
    ("k12-endport", C, W, "tcp/7999", "deny"),
    ("k12-endport", C, W, "udp/8050", "deny"),
    ("k12-endport-egress", CC, EXT, "udp/30010", "allow"),
    ("k12-endport-egress", CC, EXT, "udp/30011", "deny"),
    ("k12-endport-egress", CC, EXT, "tcp/30005", "deny"),
    # rulebook K13
    ("k13-named-ingress", C, W, "tcp/8080", "allow"),
    ("k13-named-ingress", C, W, "tcp/80", "deny"),
    ("k13-named-ingress", C, W, "tcp/9090", "deny"),
    ("k13-named-ingress", C, A, "tcp/8080", "deny"),
    ("k13-named-egress", CC, W, "tcp/8080", "allow"),
    ("k13-named-egress", CC, DW, "tcp/80", "allow"),
    ("k13-named-egress", CC, DW, "tcp/8080", "deny"),
    ("k13-named-egress", CC, A, "tcp/8080", "deny"),
    ("k13-named-egress", CC, EXT, "tcp/8080", "deny"),
    ("k13-named-udp", CC, DNS, "udp/53", "allow"),
    ("k13-named-udp", CC, DNS, "tcp/53", "deny"),
    ("k13-named-udp", CC, EXT, "udp/53", "deny"),
    ("k13-named-wrong-protocol", CC, DNS, "udp/53", "deny"),
    ("k13-named-wrong-protocol", CC, DNS, "tcp/53", "deny"),
    # rulebook K14
    ("k14-sctp", C, W, "sctp/80", "allow"),
    ("k14-sctp", C, W, "tcp/80", "deny"),
    ("k14-sctp", C, W, "udp/80", "deny"),
    ("k14-udp", C, W, "udp/80", "allow"),
    ("k14-udp", C, W, "tcp/80", "deny"),
    # rulebook K15
    ("k15-ns-by-name", DW, W, "tcp/80", "allow"),
    ("k15-ns-by-name", CC, W, "tcp/80", "deny"),
    ("k15-unlabelled-ns", CC, W, "tcp/80", "allow"),
    ("k15-unlabelled-ns", C, W, "tcp/80", "deny"),
    # rulebook L1
    ("l1-notin", M, W, "tcp/80", "allow"),
    ("l1-notin", A, W, "tcp/80", "allow"),
    ("l1-notin", C, W, "tcp/80", "deny"),
    ("l1-in", C, W, "tcp/80", "allow"),
    ("l1-in", A, W, "tcp/80", "allow"),
    ("l1-in", M, W, "tcp/80", "deny"),
    ("l1-exists", M, W, "tcp/80", "allow"),
    ("l1-exists", C, W, "tcp/80", "deny"),
    ("l1-doesnotexist", M, W, "tcp/80", "allow"),
    ("l1-doesnotexist", A, W, "tcp/80", "deny"),
    ("l1-labels-and-expressions", DC, W, "tcp/80", "allow"),
    ("l1-labels-and-expressions", C, W, "tcp/80", "deny"),
    ("l1-labels-and-expressions", OC, W, "tcp/80", "deny"),
    ("l1-ns-notin", CC, W, "tcp/80", "allow"),
    ("l1-ns-notin", DC, W, "tcp/80", "allow"),
    ("l1-ns-notin", C, W, "tcp/80", "deny"),
    # rulebook L2
    ("l2-ne", M, W, "tcp/80", "allow"),
    ("l2-ne", A, W, "tcp/80", "allow"),
    ("l2-ne", C, W, "tcp/80", "deny"),
    ("l2-ne", CW, W, "tcp/80", "deny"),  # app=web passes the selector, but default is out of the NP's scope
    ("l2-notin", M, W, "tcp/80", "allow"),
    ("l2-notin", C, W, "tcp/80", "deny"),
    ("l2-starts", C, W, "tcp/80", "allow"),
    ("l2-starts", A, W, "tcp/80", "deny"),
    ("l2-starts", CC, W, "tcp/80", "deny"),
    ("l2-ends", A, W, "tcp/80", "allow"),
    ("l2-ends", C, W, "tcp/80", "deny"),
    ("l2-contains", C, W, "tcp/80", "allow"),
    ("l2-contains", M, W, "tcp/80", "deny"),
    ("l2-precedence", A, W, "tcp/80", "allow"),
    ("l2-precedence", C, W, "tcp/80", "deny"),
    ("l2-not-binds-tight", M, W, "tcp/80", "allow"),
    ("l2-not-binds-tight", C, W, "tcp/80", "deny"),
    # rulebook L3
    ("l3-namespace-label", A, DW, "tcp/80", "deny"),
    ("l3-namespace-label", C, DW, "tcp/80", "allow"),
    ("l3-namespace-label", A, W, "tcp/80", "allow"),
    ("l3-orchestrator", CC, W, "tcp/80", "allow"),
    ("l3-orchestrator", EXT, W, "tcp/80", "deny"),
    ("l3-ns-name", DC, W, "tcp/80", "allow"),
    ("l3-ns-name", CC, W, "tcp/80", "deny"),
    ("l3-sa-name-label", A, W, "tcp/80", "allow"),
    ("l3-sa-name-label", M, W, "tcp/80", "deny"),
    # rulebook C1
    ("c1-tier-before-default", DC, W, "tcp/80", "deny"),
    ("c1-tier-before-default", CC, W, "tcp/80", "allow"),
    ("c1-tier-before-default", EXT, W, "tcp/80", "deny"),
    ("c1-tier-before-default", CC, A, "tcp/80", "allow"),
    ("c1-tier-before-default", DC, A, "tcp/80", "deny"),
    ("c1-tier-without-order-last", C, W, "tcp/80", "allow"),
    ("c1-tier-without-order-last", A, W, "tcp/80", "deny"),
    ("c1-tier-without-order-last", DC, DW, "tcp/80", "deny"),
    ("c1-tier-order-tie-by-name", C, W, "tcp/80", "deny"),
    ("c1-tier-order-tie-by-name", A, W, "tcp/80", "allow"),
    # rulebook C2
    ("c2-ingress-only-tier", W, EXT, "tcp/443", "allow"),
    ("c2-ingress-only-tier", EXT, W, "tcp/80", "deny"),
    ("c2-ingress-only-tier", C, W, "tcp/80", "allow"),
    ("c2-ingress-only-tier", A, W, "tcp/80", "deny"),
    ("c2-ingress-only-tier", C, A, "tcp/80", "allow"),
    ("c2-both-types-no-egress-rules", W, EXT, "tcp/443", "deny"),
    ("c2-both-types-no-egress-rules", C, W, "tcp/80", "allow"),
    # rulebook C3
    ("c3-tie-deny-first", C, W, "tcp/80", "deny"),
    ("c3-tie-allow-first", C, W, "tcp/80", "allow"),
    ("c3-no-order-last", C, W, "tcp/80", "allow"),
    ("c3-float-order", C, W, "tcp/80", "allow"),
    ("c3-float-order", C, W, "udp/80", "deny"),
    ("c3-rule-order", A, W, "tcp/80", "deny"),
    ("c3-rule-order", C, W, "tcp/80", "allow"),
    # rulebook C4
    ("c4-log-continues", C, W, "tcp/80", "allow"),
    ("c4-log-continues", C, W, "udp/80", "deny"),
    ("c4-pass-skips-tier", C, W, "tcp/80", "allow"),
    ("c4-pass-skips-tier", A, W, "tcp/80", "deny"),
    ("c4-pass-to-next-tier", A, W, "tcp/80", "deny"),
    ("c4-pass-to-next-tier", C, W, "tcp/80", "allow"),
    # rulebook C5
    ("c5-default-pass", C, W, "tcp/80", "allow"),
    ("c5-default-pass", A, W, "tcp/80", "deny"),
    ("c5-default-pass-then-k8s", C, W, "tcp/80", "deny"),
    ("c5-default-pass-then-k8s", C, A, "tcp/80", "deny"),
    ("c5-default-deny", C, W, "tcp/80", "deny"),
    ("c5-default-deny", A, W, "tcp/80", "allow"),
    # rulebook C7
    ("c7-deny-before-k8s", C, W, "tcp/80", "deny"),
    ("c7-deny-before-k8s", A, W, "tcp/80", "deny"),
    ("c7-deny-after-k8s", C, W, "tcp/80", "allow"),
    ("c7-deny-after-k8s", A, W, "tcp/80", "deny"),
    ("c7-later-allow", C, W, "tcp/80", "allow"),
    ("c7-later-allow", C, A, "tcp/80", "deny"),
    ("c7-later-allow", M, W, "tcp/80", "deny"),
    ("c7-later-allow", CC, W, "tcp/80", "deny"),
    ("c7-later-allow-no-order", DC, W, "tcp/80", "allow"),
    ("c7-later-allow-no-order", CC, W, "tcp/80", "deny"),
    ("c7-pass-before-k8s", C, W, "tcp/80", "allow"),
    ("c7-pass-before-k8s", A, W, "tcp/80", "deny"),
    # rulebook C8
    ("c8-egress-only-rules", W, C, "tcp/80", "allow"),
    ("c8-egress-only-rules", C, EXT, "tcp/443", "deny"),
    ("c8-egress-only-rules", C, EXT2, "tcp/443", "allow"),
    ("c8-no-rules", W, C, "tcp/80", "deny"),
    ("c8-no-rules", C, EXT, "tcp/443", "allow"),
    ("c8-explicit-both", W, C, "tcp/80", "allow"),
    ("c8-explicit-both", C, EXT, "tcp/443", "deny"),
    # rulebook C9
    ("c9-np-own-namespace", DC, DW, "tcp/80", "allow"),
    ("c9-np-own-namespace", C, W, "tcp/80", "deny"),
    ("c9-gnp-namespace-selector", DC, DW, "tcp/80", "allow"),
    ("c9-gnp-namespace-selector", C, W, "tcp/80", "deny"),
    ("c9-gnp-namespace-selector-only", C, A, "tcp/80", "deny"),
    ("c9-gnp-namespace-selector-only", C, DW, "tcp/80", "allow"),
    ("c9-np-sa-selector", C, A, "tcp/80", "deny"),
    ("c9-np-sa-selector", C, W, "tcp/80", "allow"),
    ("c9-gnp-sa-selector-by-name", C, M, "tcp/80", "deny"),
    ("c9-gnp-sa-selector-by-name", C, A, "tcp/80", "allow"),
    # rulebook C10
    ("c10-not-protocol", C, W, "tcp/80", "deny"),
    ("c10-not-protocol", C, W, "udp/80", "allow"),
    ("c10-protocol-number", C, W, "udp/80", "allow"),
    ("c10-protocol-number", C, W, "tcp/80", "deny"),
    ("c10-no-source-matches-external", EXT, W, "tcp/80", "allow"),
    ("c10-no-source-matches-external", CC, W, "tcp/80", "allow"),
    # rulebook C11
    ("c11-nets", EXT, W, "tcp/80", "allow"),
    ("c11-nets", EXT2, W, "tcp/80", "deny"),
    ("c11-nets", C, W, "tcp/80", "allow"),
    ("c11-nets", CC, W, "tcp/80", "deny"),
    ("c11-not-nets", EXT, W, "tcp/80", "allow"),
    ("c11-not-nets", C, W, "tcp/80", "deny"),
    ("c11-port-range", C, W, "tcp/8000", "allow"),
    ("c11-port-range", C, W, "tcp/8100", "allow"),
    ("c11-port-range", C, W, "tcp/443", "allow"),
    ("c11-port-range", C, W, "tcp/8101", "deny"),
    ("c11-port-range", C, W, "udp/8000", "deny"),
    ("c11-not-ports", C, W, "tcp/80", "allow"),
    ("c11-not-ports", C, W, "tcp/22", "deny"),
    ("c11-not-ports", C, W, "udp/80", "deny"),
    ("c11-named-port-ingress", C, W, "tcp/8080", "allow"),
    ("c11-named-port-ingress", C, W, "tcp/80", "deny"),
    ("c11-named-port-ingress", C, DW, "tcp/80", "allow"),
    ("c11-named-port-egress", CC, DW, "tcp/80", "allow"),
    ("c11-named-port-egress", CC, W, "tcp/8080", "allow"),
    ("c11-named-port-egress", CC, EXT, "tcp/8080", "deny"),
    ("c11-np-selector-all", C, W, "tcp/80", "allow"),
    ("c11-np-selector-all", CC, W, "tcp/80", "deny"),
    ("c11-np-selector-all", EXT, W, "tcp/80", "deny"),
    ("c11-gnp-selector-all", CC, W, "tcp/80", "allow"),
    ("c11-gnp-selector-all", EXT, W, "tcp/80", "deny"),
    ("c11-gnp-not-selector", EXT, W, "tcp/80", "allow"),
    ("c11-gnp-not-selector", A, W, "tcp/80", "allow"),
    ("c11-gnp-not-selector", C, W, "tcp/80", "deny"),
    ("c11-gnp-not-selector", CC, W, "tcp/80", "deny"),
    ("c11-np-not-selector", A, W, "tcp/80", "allow"),
    ("c11-np-not-selector", C, W, "tcp/80", "deny"),
    ("c11-np-not-selector", CW, W, "tcp/80", "deny"),
    ("c11-np-not-selector", EXT, W, "tcp/80", "deny"),
    ("c11-np-ns-selector-all", CC, W, "tcp/80", "allow"),
    ("c11-np-ns-selector-all", EXT, W, "tcp/80", "deny"),
    ("c11-np-ns-selector-all", HEP, W, "tcp/80", "deny"),
    ("c11-gnp-ns-selector-global", HEP, W, "tcp/80", "allow"),
    ("c11-gnp-ns-selector-global", C, W, "tcp/80", "deny"),
    ("c11-gnp-ns-selector-global", EXT, W, "tcp/80", "deny"),
    ("c11-np-ns-and-selector", DC, W, "tcp/80", "allow"),
    ("c11-np-ns-and-selector", C, W, "tcp/80", "deny"),
    ("c11-np-ns-and-selector", DW, W, "tcp/80", "deny"),
    ("c11-same-name-replaces", C, A, "tcp/6379", "deny"),
    ("c11-same-name-replaces", DC, A, "tcp/6379", "allow"),
    ("c11-sa-names", A, W, "tcp/80", "allow"),
    ("c11-sa-names", C, W, "tcp/80", "deny"),
    ("c11-sa-names", EXT, W, "tcp/80", "deny"),
    ("c11-sa-selector-not-pod-labels", A, W, "tcp/80", "allow"),
    ("c11-sa-selector-not-pod-labels", M, W, "tcp/80", "deny"),
    ("c11-sa-selector-not-pod-labels", DC, W, "tcp/80", "deny"),
    ("c11-sa-names-and-selector", M, W, "tcp/80", "allow"),
    ("c11-sa-names-and-selector", A, W, "tcp/80", "deny"),
    ("c11-np-sa-scope", A, DW, "tcp/80", "deny"),
    # host endpoints
    ("hep-gnp", EXT, HEP, "tcp/22", "allow"),
    ("hep-gnp", EXT, HEP, "tcp/80", "deny"),
    ("hep-gnp", C, HEP, "tcp/22", "allow"),
    ("hep-pod-egress", CC, HEP, "tcp/22", "allow"),
    ("hep-pod-egress", CC, EXT, "tcp/22", "deny"),
    # staged policies never change the enforced verdict
    ("staged-np-deny", C, W, "tcp/80", "allow"),
    ("staged-knp-deny-all", C, W, "tcp/80", "allow"),
    ("staged-gnp-allow", C, W, "tcp/80", "deny"),
]

# (scenario, source, destination, "proto/port", expected pending verdict)
PENDING: list[tuple[str, str, str, str, str]] = [
    ("staged-np-deny", C, W, "tcp/80", "deny"),
    ("staged-knp-deny-all", C, W, "tcp/80", "deny"),
    ("staged-gnp-allow", C, W, "tcp/80", "allow"),
    ("none", C, W, "tcp/80", "allow"),
]

# (scenario, source, destination, "proto/port", expected ingress enforced trace)
TRACES: list[tuple[str, str, str, str, list[str]]] = [
    ("none", C, W, "tcp/80", ["0|__PROFILE__|pro:kns.prod|allow|0"]),
    ("r01-deny-all-to-app", EXT, W, "tcp/80", ["0|default|knp:prod/web-deny-all|deny|-1"]),
    ("r02-limit-to-app", C, A, "tcp/80", ["0|default|knp:prod/api-allow|allow|0"]),
    ("c7-deny-after-k8s", A, W, "tcp/80", ["0|default|np:prod/deny-cli-late|deny|-1"]),
    ("c7-deny-before-k8s", C, W, "tcp/80", ["0|default|np:prod/deny-cli|deny|0"]),
    ("c4-pass-skips-tier", C, W, "tcp/80", ["0|sec|gnp:sec.p1|pass|0", "1|__PROFILE__|pro:kns.prod|allow|0"]),
    ("c4-pass-skips-tier", A, W, "tcp/80", ["0|sec|gnp:sec.p2|deny|0"]),
    ("c4-pass-to-next-tier", C, W, "tcp/80", ["0|sec|gnp:sec.p1|pass|0", "1|sec2|gnp:sec2.p2|allow|1"]),
    ("c5-default-pass", C, W, "tcp/80", ["0|pt|gnp:pt.web|pass|-1", "1|__PROFILE__|pro:kns.prod|allow|0"]),
    (
        "c5-default-pass-then-k8s",
        C,
        W,
        "tcp/80",
        ["0|pt|gnp:pt.web|pass|-1", "1|default|knp:prod/deny-all|deny|-1"],
    ),
    (
        "c1-tier-before-default",
        EXT,
        W,
        "tcp/80",
        ["0|sec|gnp:sec.deny-dev|pass|1", "1|default|knp:prod/allow-all-ns|deny|-1"],
    ),
    (
        "c1-tier-before-default",
        CC,
        A,
        "tcp/80",
        ["0|sec|gnp:sec.deny-dev|pass|1", "1|__PROFILE__|pro:kns.prod|allow|0"],
    ),
    (
        "c7-pass-before-k8s",
        C,
        W,
        "tcp/80",
        ["0|default|gnp:pass-clients|pass|0", "1|__PROFILE__|pro:kns.prod|allow|0"],
    ),
]


# ----------------------------------------------------------------------------------------------
# Second round: the corners (e2e CIDR/except tests, empty forms, staged tiers, blame, scoping)

SCENARIOS.update(
    {
        "k1-matchlabels-null": knp(
            "null-selector", "prod", "{podSelector: {matchLabels: null}, ingress: []}"
        ),
        "k1-pod-selector-expressions": knp(
            "isolate-not-web",
            "prod",
            "{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [web]}]}, ingress: []}",
        ),
        "k2-both-types-no-rules": knp(
            "lockdown", "prod", f"{{podSelector: {WEB}, policyTypes: [Ingress, Egress]}}"
        ),
        "k4-both-directions": knp(
            "web-both",
            "prod",
            f"{{podSelector: {WEB}, policyTypes: [Ingress, Egress], ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]}}], "
            "egress: [{to: [{namespaceSelector: {matchLabels: {env: dev}}}]}]}",
        ),
        "k5-empty-ports-list": knp(
            "web-empty-ports",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{podSelector: {{}}}}], ports: []}}]}}",
        ),
        "k11-e2e-large-cidr-except": knp(
            "cli-egress-large",
            "default",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], "
            "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/4, except: [10.0.2.1/32]}}]}]}",
        ),
        "k11-e2e-overlap-allowed": knp(
            "cli-egress-large",
            "default",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], "
            "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/4, except: [10.0.2.1/32]}}]}]}",
        )
        + knp(
            "cli-egress-web",
            "default",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.2.1/32}}]}]}",
        ),
        "k13-named-port-from-namespace": knp(
            "web-http-from-dev",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: dev}}}}}}], ports: [{{port: http, protocol: TCP}}]}}]}}",
        ),
        "k14-sctp-egress": knp(
            "cli-sctp",
            "default",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{protocol: SCTP, port: 9000}]}]}",
        ),
        "k9-ns-all-pod-all": knp(
            "web-any-pod",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{}}, podSelector: {{}}}}]}}]}}",
        ),
        "l2-empty-set-and-has": calico_src_selector("empty", "has(role) && app not in {}"),
        "l2-in-empty-set": calico_src_selector("in-empty", "app in {}"),
        "c1-tier-after-default": tier("after", "{order: 2000000}")
        + gnp("pass-all", "{order: 1, selector: \"app == 'web'\", ingress: [{action: Pass}]}")
        + gnp(
            "after.deny-api",
            "{tier: after, selector: \"app == 'web'\", ingress: [{action: Deny, source: {selector: \"app == 'api'\"}}, {action: Allow}]}",
        ),
        "c2-egress-only-tier": tier("sec", "{order: 100}")
        + gnp(
            "sec.cli-out",
            "{tier: sec, selector: \"app == 'client'\", egress: [{action: Allow, destination: {selector: \"app == 'web'\"}}]}",
        ),
        "c3-calico-policy-ties-k8s-order": DENY_ALL_PROD
        + np(
            "allow-at-1000",
            "prod",
            "{order: 1000, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c5-pass-default-types-egress-only": tier("pt", "{order: 100, defaultAction: Pass}")
        + gnp(
            "pt.out",
            "{tier: pt, selector: \"app == 'web'\", egress: [{action: Deny, destination: {nets: [8.8.8.8/32]}}]}",
        ),
        "c7-calico-tier-allow-over-k8s-deny": tier("sec", "{order: 100}")
        + DENY_ALL_PROD
        + gnp(
            "sec.allow-clients",
            "{tier: sec, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
        ),
        "c7-blame-per-direction": DENY_ALL_PROD
        + np(
            "zz-egress",
            "prod",
            "{order: 2000, selector: \"app == 'web'\", types: [Egress], egress: [{action: Allow}]}",
        ),
        "c7-k8s-egress-at-1000": knp(
            "cli-deny-egress", "prod", "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress]}"
        )
        + np(
            "allow-dns-late",
            "prod",
            "{order: 1500, selector: \"app == 'client'\", egress: [{action: Allow, protocol: UDP, destination: {ports: [53]}}]}",
        ),
        "c10-protocol-lower-case": np(
            "web-tcp-lc",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: tcp, destination: {ports: [80]}}]}",
        ),
        "c10-sctp-ports": np(
            "web-sctp",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: SCTP, destination: {ports: [80]}}]}",
        ),
        "c11-selector-and-nets": gnp(
            "web-sel-nets",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'client'\", nets: [10.0.2.0/24]}}]}",
        ),
        "c11-selector-and-not-selector": gnp(
            "web-sel-not",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: has(app), notSelector: \"app == 'client'\"}}]}",
        ),
        "c11-np-egress-destination-scope": np(
            "cli-to-web",
            "default",
            "{selector: \"app == 'client'\", egress: [{action: Allow, destination: {selector: \"app == 'web'\"}}]}",
        ),
        "c11-np-egress-ns-name": np(
            "cli-to-dns",
            "default",
            "{selector: \"app == 'client'\", egress: [{action: Allow, protocol: UDP, destination: "
            "{namespaceSelector: \"projectcalico.org/name == 'kube-system'\", ports: [53]}}]}",
        ),
        "c11-named-port-udp-vs-tcp-rule": np(
            "cli-dns-named",
            "default",
            "{selector: \"app == 'client'\", egress: [{action: Allow, protocol: TCP, destination: {ports: [dns]}}]}",
        ),
        "c11-ingress-destination-selector": gnp(
            "dst-sel",
            "{selector: has(app), ingress: [{action: Allow, destination: {selector: \"app == 'web'\"}}]}",
        ),
        "c11-gnp-ns-selector-all-excludes-hosts": HOST_ENDPOINT
        + HOSTS_OUT
        + gnp(
            "web-from-pods",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: all()}}]}",
        ),
        "c11-gnp-not-selector-with-ns": gnp(
            "web-not-dev",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: \"env == 'dev'\", notSelector: \"role == 'monitoring'\"}}]}",
        ),
        "c11-np-sa-with-ns-selector": np(
            "web-sa-ns",
            "dev",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {serviceAccounts: {names: [api-sa]}, namespaceSelector: \"env == 'prod'\"}}]}",
        ),
        "hep-gnp-all-selects-hosts": tier("sec", "{order: 100}")
        + HOST_ENDPOINT
        + gnp(
            "sec.deny-ssh",
            "{tier: sec, selector: all(), ingress: [{action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Pass}]}",
        )
        + gnp("allow-hosts", "{selector: \"role == 'node'\", ingress: [{action: Allow}]}"),
        "hep-namespace-selector-skips-hosts": HOST_ENDPOINT
        + gnp(
            "pods-only",
            "{namespaceSelector: all(), ingress: [{action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Allow}]}",
        )
        + gnp("hosts-allow", "{order: 5000, selector: \"role == 'node'\", ingress: [{action: Allow}]}"),
        "staged-only-tier": tier("tier1", "{order: 100}")
        + tier("tier2", "{order: 200}")
        + np("tier1.np1-1", "default", "{tier: tier1, selector: all(), ingress: [{action: Pass}]}")
        + np(
            "tier2.np2-1",
            "default",
            "{tier: tier2, selector: all(), ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}]}",
            kind="StagedNetworkPolicy",
        ),
        "staged-delete": DENY_ALL_PROD
        + knp(
            "deny-all",
            "prod",
            "{podSelector: {}, policyTypes: [Ingress]}",
            kind="StagedKubernetesNetworkPolicy",
        ).replace("spec: ", "spec: {stagedAction: Delete, podSelector: {}, policyTypes: [Ingress]}\n#"),
        "staged-ignore": np(
            "signore",
            "prod",
            "{stagedAction: Ignore, selector: \"app == 'web'\", ingress: [{action: Deny}]}",
            kind="StagedNetworkPolicy",
        ),
        "staged-blame-non-staged": DENY_ALL_PROD
        + np(
            "zz-staged",
            "prod",
            "{order: 2000, selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"app == 'api'\"}}]}",
            kind="StagedNetworkPolicy",
        ),
    }
)

PROBES += [
    ("k1-matchlabels-null", C, A, "tcp/80", "deny"),
    ("k1-matchlabels-null", C, W, "tcp/80", "deny"),
    ("k1-matchlabels-null", DC, DW, "tcp/80", "allow"),
    ("k1-pod-selector-expressions", C, A, "tcp/80", "deny"),
    ("k1-pod-selector-expressions", A, M, "tcp/80", "deny"),
    ("k1-pod-selector-expressions", C, W, "tcp/80", "allow"),
    ("k2-both-types-no-rules", C, W, "tcp/80", "deny"),
    ("k2-both-types-no-rules", W, EXT, "tcp/443", "deny"),
    ("k2-both-types-no-rules", C, A, "tcp/80", "allow"),
    ("k4-both-directions", C, W, "tcp/80", "allow"),
    ("k4-both-directions", A, W, "tcp/80", "deny"),
    ("k4-both-directions", W, DW, "tcp/80", "allow"),
    ("k4-both-directions", W, C, "tcp/80", "deny"),
    ("k4-both-directions", W, EXT, "tcp/80", "deny"),
    ("k5-empty-ports-list", C, W, "udp/1234", "allow"),
    ("k5-empty-ports-list", C, W, "sctp/9", "allow"),
    ("k5-empty-ports-list", CC, W, "tcp/80", "deny"),
    ("k11-e2e-large-cidr-except", CC, W, "tcp/80", "deny"),
    ("k11-e2e-large-cidr-except", CC, A, "tcp/80", "allow"),
    ("k11-e2e-large-cidr-except", CC, EXT, "tcp/80", "allow"),
    ("k11-e2e-large-cidr-except", CC, EXT2, "tcp/80", "deny"),
    ("k11-e2e-overlap-allowed", CC, W, "tcp/80", "allow"),
    ("k13-named-port-from-namespace", DC, W, "tcp/8080", "allow"),
    ("k13-named-port-from-namespace", DC, W, "tcp/80", "deny"),
    ("k13-named-port-from-namespace", C, W, "tcp/8080", "deny"),
    ("k14-sctp-egress", CC, EXT, "sctp/9000", "allow"),
    ("k14-sctp-egress", CC, EXT, "tcp/9000", "deny"),
    ("k14-sctp-egress", CC, EXT, "udp/9000", "deny"),
    ("k9-ns-all-pod-all", OC, W, "tcp/80", "allow"),
    ("k9-ns-all-pod-all", EXT, W, "tcp/80", "deny"),
    ("l2-empty-set-and-has", M, W, "tcp/80", "allow"),
    ("l2-empty-set-and-has", A, W, "tcp/80", "deny"),
    ("l2-in-empty-set", C, W, "tcp/80", "deny"),
    ("c1-tier-after-default", A, W, "tcp/80", "deny"),
    ("c1-tier-after-default", C, W, "tcp/80", "allow"),
    ("c2-egress-only-tier", C, W, "tcp/80", "allow"),
    ("c2-egress-only-tier", C, EXT, "tcp/80", "deny"),
    ("c2-egress-only-tier", W, C, "tcp/80", "allow"),
    ("c2-egress-only-tier", EXT, C, "tcp/80", "allow"),
    ("c3-calico-policy-ties-k8s-order", C, W, "tcp/80", "allow"),
    ("c3-calico-policy-ties-k8s-order", A, W, "tcp/80", "deny"),
    ("c5-pass-default-types-egress-only", W, EXT, "tcp/80", "deny"),
    ("c5-pass-default-types-egress-only", W, EXT2, "tcp/80", "allow"),
    ("c5-pass-default-types-egress-only", EXT, W, "tcp/80", "allow"),
    ("c7-calico-tier-allow-over-k8s-deny", C, W, "tcp/80", "allow"),
    ("c7-calico-tier-allow-over-k8s-deny", A, W, "tcp/80", "deny"),
    ("c7-blame-per-direction", C, W, "tcp/80", "deny"),
    ("c7-blame-per-direction", W, EXT, "tcp/80", "allow"),
    ("c7-k8s-egress-at-1000", C, DNS, "udp/53", "allow"),
    ("c7-k8s-egress-at-1000", C, DNS, "tcp/53", "deny"),
    ("c10-protocol-lower-case", C, W, "tcp/80", "allow"),
    ("c10-protocol-lower-case", C, W, "udp/80", "deny"),
    ("c10-sctp-ports", C, W, "sctp/80", "allow"),
    ("c10-sctp-ports", C, W, "tcp/80", "deny"),
    ("c11-selector-and-nets", C, W, "tcp/80", "allow"),
    ("c11-selector-and-nets", CC, W, "tcp/80", "deny"),
    ("c11-selector-and-nets", A, W, "tcp/80", "deny"),
    ("c11-selector-and-not-selector", A, W, "tcp/80", "allow"),
    ("c11-selector-and-not-selector", C, W, "tcp/80", "deny"),
    ("c11-selector-and-not-selector", M, W, "tcp/80", "deny"),
    ("c11-selector-and-not-selector", EXT, W, "tcp/80", "deny"),
    ("c11-np-egress-destination-scope", CC, CW, "tcp/80", "allow"),
    ("c11-np-egress-destination-scope", CC, W, "tcp/80", "deny"),
    ("c11-np-egress-ns-name", CC, DNS, "udp/53", "allow"),
    ("c11-np-egress-ns-name", CC, EXT, "udp/53", "deny"),
    ("c11-np-egress-ns-name", CC, DNS, "tcp/53", "deny"),
    ("c11-named-port-udp-vs-tcp-rule", CC, DNS, "tcp/53", "deny"),
    ("c11-named-port-udp-vs-tcp-rule", CC, DNS, "udp/53", "deny"),
    ("c11-ingress-destination-selector", C, W, "tcp/80", "allow"),
    ("c11-ingress-destination-selector", C, A, "tcp/80", "deny"),
    ("c11-gnp-ns-selector-all-excludes-hosts", HEP, W, "tcp/80", "deny"),
    ("c11-gnp-ns-selector-all-excludes-hosts", OC, W, "tcp/80", "allow"),
    ("c11-gnp-not-selector-with-ns", DW, W, "tcp/80", "allow"),
    ("c11-gnp-not-selector-with-ns", DC, W, "tcp/80", "deny"),
    ("c11-gnp-not-selector-with-ns", C, W, "tcp/80", "deny"),
    ("c11-gnp-not-selector-with-ns", EXT, W, "tcp/80", "deny"),
    ("c11-np-sa-with-ns-selector", A, DW, "tcp/80", "allow"),
    ("c11-np-sa-with-ns-selector", M, DW, "tcp/80", "deny"),
    ("hep-gnp-all-selects-hosts", EXT, HEP, "tcp/22", "deny"),
    ("hep-gnp-all-selects-hosts", EXT, HEP, "tcp/80", "allow"),
    ("hep-gnp-all-selects-hosts", C, W, "tcp/22", "deny"),
    ("hep-gnp-all-selects-hosts", C, W, "tcp/80", "allow"),
    ("hep-namespace-selector-skips-hosts", EXT, HEP, "tcp/22", "allow"),
    ("hep-namespace-selector-skips-hosts", C, W, "tcp/22", "deny"),
    ("staged-only-tier", CC, CW, "tcp/80", "allow"),
    ("staged-only-tier", FOO, CW, "tcp/80", "allow"),
    ("staged-delete", C, W, "tcp/80", "deny"),
    ("staged-ignore", C, W, "tcp/80", "allow"),
    ("staged-blame-non-staged", A, W, "tcp/80", "deny"),
]

PENDING += [
    ("staged-only-tier", CC, CW, "tcp/80", "allow"),
    ("staged-only-tier", FOO, CW, "tcp/80", "deny"),
    ("staged-delete", C, W, "tcp/80", "allow"),
    ("staged-ignore", C, W, "tcp/80", "allow"),
    ("staged-blame-non-staged", A, W, "tcp/80", "allow"),
    ("staged-blame-non-staged", C, W, "tcp/80", "deny"),
]

TRACES += [
    ("c7-blame-per-direction", C, W, "tcp/80", ["0|default|knp:prod/deny-all|deny|-1"]),
    ("staged-blame-non-staged", C, W, "tcp/80", ["0|default|knp:prod/deny-all|deny|-1"]),
    (
        "staged-only-tier",
        CC,
        CW,
        "tcp/80",
        ["0|tier1|np:default/tier1.np1-1|pass|0", "1|__PROFILE__|pro:kns.default|allow|0"],
    ),
    ("c3-calico-policy-ties-k8s-order", A, W, "tcp/80", ["0|default|knp:prod/deny-all|deny|-1"]),
]

# (scenario, source, destination, "proto/port", expected ingress pending trace)
PENDING_TRACES: list[tuple[str, str, str, str, list[str]]] = [
    (
        "staged-only-tier",
        CC,
        CW,
        "tcp/80",
        ["0|tier1|np:default/tier1.np1-1|pass|0", "1|tier2|snp:default/tier2.np2-1|allow|0"],
    ),
    (
        "staged-only-tier",
        FOO,
        CW,
        "tcp/80",
        ["0|tier1|np:default/tier1.np1-1|pass|0", "1|tier2|snp:default/tier2.np2-1|deny|-1"],
    ),
]

# ----------------------------------------------------------------------------------------------
# Third round: defaults that are easy to get wrong

SCENARIOS.update(
    {
        "c4-log-only-ends-tier": gnp("log-only", "{selector: \"app == 'web'\", ingress: [{action: Log}]}"),
        "c8-types-egress-ignores-ingress-rules": np(
            "web-egress-type",
            "prod",
            "{selector: \"app == 'web'\", types: [Egress], ingress: [{action: Deny}], egress: [{action: Allow}]}",
        ),
        "c9-np-default-selector": np(
            "deny-prod",
            "prod",
            "{ingress: [{action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Allow}]}",
        ),
        "c9-np-selector-and-sa-selector": np(
            "deny-backend-api",
            "prod",
            "{selector: has(app), serviceAccountSelector: \"team == 'ops'\", ingress: [{action: Deny}]}",
        ),
        "c9-gnp-ns-by-name": gnp(
            "deny-dev", "{namespaceSelector: \"projectcalico.org/name == 'dev'\", ingress: [{action: Deny}]}"
        ),
        "c9-gnp-no-selector-selects-hosts": HOST_ENDPOINT
        + gnp(
            "no-ssh",
            "{ingress: [{action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Allow}]}",
        ),
        "c10-protocol-number-with-ports": np(
            "web-6",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: 6, destination: {ports: [80]}}]}",
        ),
        "c10-not-protocol-and-protocol": np(
            "web-np",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, notProtocol: UDP}]}",
        ),
        "c11-not-ports-range-and-named": gnp(
            "web-notports",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, destination: {notPorts: ['8000:8100', http]}}]}",
        ),
        "c11-named-port-udp-rule-on-tcp-port": gnp(
            "web-named-udp",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: UDP, destination: {ports: [http]}}]}",
        ),
        "c11-ports-and-not-ports": gnp(
            "web-range-but",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, protocol: TCP, destination: {ports: ['8000:8100'], notPorts: [8080]}}]}",
        ),
        "c11-nets-and-not-nets": gnp(
            "web-nets-but",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {nets: [10.0.0.0/8], notNets: [10.0.3.0/24]}}]}",
        ),
        "c11-np-not-selector-with-nets": np(
            "web-not-client-nets",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {nets: [0.0.0.0/0]}}, {action: Deny}]}",
        ),
        "c11-np-ns-selector-global": HOST_ENDPOINT
        + HOSTS_OUT
        + np(
            "web-from-hosts",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {namespaceSelector: global()}}]}",
        ),
        "c11-egress-destination-sa": gnp(
            "cli-to-api-sa",
            "{selector: \"app == 'client'\", egress: [{action: Allow, destination: {serviceAccounts: {names: [api-sa]}}}]}",
        ),
    }
)

PROBES += [
    ("c4-log-only-ends-tier", C, W, "tcp/80", "deny"),
    ("c8-types-egress-ignores-ingress-rules", C, W, "tcp/80", "allow"),
    ("c8-types-egress-ignores-ingress-rules", W, EXT, "tcp/80", "allow"),
    ("c9-np-default-selector", C, A, "tcp/22", "deny"),
    ("c9-np-default-selector", C, A, "tcp/80", "allow"),
    ("c9-np-default-selector", C, DW, "tcp/22", "allow"),
    ("c9-np-selector-and-sa-selector", C, A, "tcp/80", "allow"),
    ("c9-np-selector-and-sa-selector", C, M, "tcp/80", "allow"),
    ("c9-gnp-ns-by-name", C, DW, "tcp/80", "deny"),
    ("c9-gnp-ns-by-name", C, W, "tcp/80", "allow"),
    ("c9-gnp-no-selector-selects-hosts", EXT, HEP, "tcp/22", "deny"),
    ("c9-gnp-no-selector-selects-hosts", EXT, HEP, "tcp/80", "allow"),
    ("c9-gnp-no-selector-selects-hosts", C, W, "tcp/22", "deny"),
    ("c10-protocol-number-with-ports", C, W, "tcp/80", "allow"),
    ("c10-protocol-number-with-ports", C, W, "tcp/81", "deny"),
    ("c10-not-protocol-and-protocol", C, W, "tcp/80", "allow"),
    ("c10-not-protocol-and-protocol", C, W, "udp/80", "deny"),
    ("c11-not-ports-range-and-named", C, W, "tcp/8050", "deny"),
    ("c11-not-ports-range-and-named", C, W, "tcp/80", "allow"),
    ("c11-not-ports-range-and-named", C, DW, "tcp/80", "deny"),
    ("c11-not-ports-range-and-named", C, DW, "tcp/8080", "deny"),
    ("c11-not-ports-range-and-named", C, DW, "tcp/8200", "allow"),
    ("c11-not-ports-range-and-named", C, W, "tcp/8200", "allow"),
    ("c11-named-port-udp-rule-on-tcp-port", C, W, "udp/8080", "deny"),
    ("c11-named-port-udp-rule-on-tcp-port", C, W, "tcp/8080", "deny"),
    ("c11-ports-and-not-ports", C, W, "tcp/8080", "deny"),
    ("c11-ports-and-not-ports", C, W, "tcp/8081", "allow"),
    ("c11-nets-and-not-nets", DC, W, "tcp/80", "deny"),
    ("c11-nets-and-not-nets", C, W, "tcp/80", "allow"),
    ("c11-nets-and-not-nets", "10.9.9.9", W, "tcp/80", "allow"),
    ("c11-np-not-selector-with-nets", EXT, W, "tcp/80", "allow"),
    ("c11-np-not-selector-with-nets", DC, W, "tcp/80", "allow"),
    ("c11-np-ns-selector-global", HEP, W, "tcp/80", "allow"),
    ("c11-np-ns-selector-global", C, W, "tcp/80", "deny"),
    ("c11-np-ns-selector-global", EXT, W, "tcp/80", "deny"),
    ("c11-egress-destination-sa", CC, A, "tcp/80", "allow"),
    ("c11-egress-destination-sa", OC, A, "tcp/80", "allow"),
    ("c11-egress-destination-sa", CC, W, "tcp/80", "deny"),
    ("c11-egress-destination-sa", CC, EXT, "tcp/80", "deny"),
]

TRACES += [
    ("c4-log-only-ends-tier", C, W, "tcp/80", ["0|default|gnp:log-only|deny|-1"]),
    ("c9-np-default-selector", C, A, "tcp/22", ["0|default|np:prod/deny-prod|deny|0"]),
    ("c11-egress-destination-sa", EXT, A, "tcp/80", ["0|__PROFILE__|pro:kns.prod|allow|0"]),
]

# ----------------------------------------------------------------------------------------------
# Fourth round: ports x peers products (policy-assistant style) and the Calico docs' default deny

SCENARIOS.update(
    {
        "pa-two-protocols": knp(
            "web-80-81",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 80, protocol: TCP}}, {{port: 81, protocol: UDP}}]}}]}}",
        ),
        "pa-peers-times-ports": knp(
            "api-peers-ports",
            "prod",
            f"{{podSelector: {API}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: client}}}}}}, "
            "{namespaceSelector: {matchLabels: {env: dev}}}], ports: [{port: 80}, {port: 53, protocol: UDP}]}]}",
        ),
        "pa-named-and-numeric": knp(
            "web-mixed",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: http}}, {{port: 9090}}]}}]}}",
        ),
        "pa-all-ports-wins": knp(
            "web-all-tcp",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 80}}, {{protocol: TCP}}]}}]}}",
        ),
        "pa-ipblock-with-ports": knp(
            "web-ext-443",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{ipBlock: {{cidr: 203.0.113.0/24}}}}], ports: [{{port: 443}}]}}]}}",
        ),
        "pa-ns-by-name-in": knp(
            "web-ns-in",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchExpressions: "
            "[{key: kubernetes.io/metadata.name, operator: In, values: [dev, other]}]}}]}]}",
        ),
        "calico-doc-namespaced-default-deny": gnp(
            "default-deny",
            "{namespaceSelector: \"has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system', 'calico-system'}\", "
            "types: [Ingress, Egress], egress: [{action: Allow, protocol: UDP, destination: {selector: \"k8s-app == 'kube-dns'\", ports: [53]}}]}",
        ),
    }
)

PROBES += [
    ("pa-two-protocols", EXT, W, "tcp/80", "allow"),
    ("pa-two-protocols", EXT, W, "udp/81", "allow"),
    ("pa-two-protocols", EXT, W, "tcp/81", "deny"),
    ("pa-two-protocols", EXT, W, "udp/80", "deny"),
    ("pa-peers-times-ports", C, A, "tcp/80", "allow"),
    ("pa-peers-times-ports", C, A, "udp/53", "allow"),
    ("pa-peers-times-ports", DW, A, "udp/53", "allow"),
    ("pa-peers-times-ports", DW, A, "tcp/80", "allow"),
    ("pa-peers-times-ports", DW, A, "tcp/53", "deny"),
    ("pa-peers-times-ports", W, A, "tcp/80", "deny"),
    ("pa-named-and-numeric", C, W, "tcp/8080", "allow"),
    ("pa-named-and-numeric", C, W, "tcp/9090", "allow"),
    ("pa-named-and-numeric", C, W, "tcp/80", "deny"),
    ("pa-all-ports-wins", C, W, "tcp/12345", "allow"),
    ("pa-all-ports-wins", C, W, "udp/80", "deny"),
    ("pa-ipblock-with-ports", EXT2, W, "tcp/443", "allow"),
    ("pa-ipblock-with-ports", EXT2, W, "tcp/80", "deny"),
    ("pa-ipblock-with-ports", EXT, W, "tcp/443", "deny"),
    ("pa-ns-by-name-in", DC, W, "tcp/80", "allow"),
    ("pa-ns-by-name-in", OC, W, "tcp/80", "allow"),
    ("pa-ns-by-name-in", CC, W, "tcp/80", "deny"),
    ("calico-doc-namespaced-default-deny", C, DNS, "udp/53", "allow"),
    ("calico-doc-namespaced-default-deny", C, DNS, "tcp/53", "deny"),
    ("calico-doc-namespaced-default-deny", C, W, "tcp/80", "deny"),
    ("calico-doc-namespaced-default-deny", EXT, W, "tcp/80", "deny"),
    ("calico-doc-namespaced-default-deny", DNS, EXT, "udp/53", "allow"),
    ("calico-doc-namespaced-default-deny", C, EXT, "udp/53", "deny"),
]

TRACES += [
    ("pa-peers-times-ports", DW, A, "udp/53", ["0|default|knp:prod/api-peers-ports|allow|3"]),
    ("pa-peers-times-ports", C, A, "tcp/80", ["0|default|knp:prod/api-peers-ports|allow|0"]),
]

# ----------------------------------------------------------------------------------------------
# Fifth round: network sets (Calico external-IPs docs) and dual-stack pods (rulebook K11: the raw peer IP)

GNS_DNS = (
    "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
    "metadata: {name: public-dns, labels: {type: dns}}\nspec: {nets: [8.8.8.0/24]}\n"
)
NS_PARTNERS = (
    "---\napiVersion: projectcalico.org/v3\nkind: NetworkSet\n"
    "metadata: {name: partners, namespace: prod, labels: {type: partner}}\nspec: {nets: [203.0.113.0/24]}\n"
)
DS1, DS1_V6, DS2, DS2_V6 = "10.0.5.9", "fd00:5::9", "10.0.5.10", "fd00:5::10"

SCENARIOS.update(
    {
        "gns-gnp-selector": GNS_DNS
        + gnp(
            "web-from-dns",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"type == 'dns'\"}}]}",
        ),
        "gns-np-needs-global": GNS_DNS
        + np(
            "web-from-dns",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"type == 'dns'\"}}]}",
        ),
        "gns-np-global-scope": GNS_DNS
        + np(
            "web-from-dns",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"type == 'dns'\", namespaceSelector: global()}}]}",
        ),
        "gns-not-selector": GNS_DNS
        + gnp(
            "web-not-dns",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {notSelector: \"type == 'dns'\"}}]}",
        ),
        "ns-np-own-namespace": NS_PARTNERS
        + np(
            "web-from-partners",
            "prod",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"type == 'partner'\"}}]}",
        )
        + np(
            "web-from-partners",
            "dev",
            "{selector: \"app == 'web'\", ingress: [{action: Allow, source: {selector: \"type == 'partner'\"}}]}",
        ),
        "dual-stack-ipblock-v6": knp(
            "ds-v6-only",
            "other",
            "{podSelector: {matchLabels: {app: ds}}, ingress: [{from: [{ipBlock: {cidr: 'fd00:5::/64'}}]}]}",
        ),
        "dual-stack-egress-v6": knp(
            "ds2-to-ds1-v6",
            "other",
            "{podSelector: {matchLabels: {app: ds-client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 'fd00:5::9/128'}}]}]}",
        ),
    }
)

PROBES += [
    ("gns-gnp-selector", EXT, W, "tcp/80", "allow"),
    ("gns-gnp-selector", "8.8.4.4", W, "tcp/80", "deny"),
    ("gns-np-needs-global", EXT, W, "tcp/80", "deny"),
    ("gns-np-global-scope", EXT, W, "tcp/80", "allow"),
    ("gns-not-selector", EXT, W, "tcp/80", "deny"),
    ("gns-not-selector", "8.8.4.4", W, "tcp/80", "allow"),
    ("ns-np-own-namespace", EXT2, W, "tcp/80", "allow"),
    ("ns-np-own-namespace", EXT2, DW, "tcp/80", "deny"),
    ("dual-stack-ipblock-v6", DS2_V6, DS1_V6, "tcp/80", "allow"),
    ("dual-stack-ipblock-v6", DS2, DS1, "tcp/80", "deny"),
    ("dual-stack-ipblock-v6", "2001:db8::1", DS1_V6, "tcp/80", "deny"),
    ("dual-stack-egress-v6", DS2_V6, DS1_V6, "tcp/80", "allow"),
    ("dual-stack-egress-v6", DS2, DS1, "tcp/80", "deny"),
]

# ----------------------------------------------------------------------------------------------
# Sixth round: more of the e2e netpol cases

SCENARIOS.update(
    {
        "e2e-default-deny-all": knp(
            "default-deny-all", "prod", "{podSelector: {}, policyTypes: [Ingress, Egress]}"
        ),
        "e2e-egress-allow-all-wins": knp(
            "cli-egress-80",
            "prod",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{ports: [{port: 80}]}]}",
        )
        + knp(
            "cli-egress-all",
            "prod",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{}]}",
        ),
        "e2e-ingress-allow-all-wins": knp(
            "web-80", "prod", f"{{podSelector: {WEB}, ingress: [{{ports: [{{port: 80}}]}}]}}"
        )
        + knp("web-all", "prod", f"{{podSelector: {WEB}, ingress: [{{}}]}}"),
        "e2e-only-other-namespaces": knp(
            "web-other-ns",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchExpressions: "
            "[{key: kubernetes.io/metadata.name, operator: NotIn, values: [prod]}]}}]}]}",
        ),
        "e2e-multiple-expressions": knp(
            "web-multi",
            "prod",
            f"{{podSelector: {WEB}, ingress: [{{from: [{{namespaceSelector: {{matchExpressions: "
            "[{key: kubernetes.io/metadata.name, operator: NotIn, values: [dev]}]}, "
            "podSelector: {matchExpressions: [{key: app, operator: In, values: [client, web]}]}}]}]}",
        ),
        "e2e-egress-pod-and-ns": knp(
            "cli-to-dev-web",
            "default",
            "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: "
            "{matchLabels: {env: dev}}, podSelector: {matchLabels: {app: web}}}]}]}",
        ),
    }
)

PROBES += [
    ("e2e-default-deny-all", C, A, "tcp/80", "deny"),
    ("e2e-default-deny-all", A, CW, "tcp/80", "deny"),
    ("e2e-default-deny-all", CC, A, "tcp/80", "deny"),
    ("e2e-default-deny-all", A, DNS, "udp/53", "deny"),
    ("e2e-default-deny-all", CC, DW, "tcp/80", "allow"),
    ("e2e-egress-allow-all-wins", C, EXT, "udp/53", "allow"),
    ("e2e-egress-allow-all-wins", C, W, "tcp/81", "allow"),
    ("e2e-ingress-allow-all-wins", EXT, W, "tcp/81", "allow"),
    ("e2e-ingress-allow-all-wins", EXT, W, "udp/80", "allow"),
    ("e2e-only-other-namespaces", C, W, "tcp/80", "deny"),
    ("e2e-only-other-namespaces", CC, W, "tcp/80", "allow"),
    ("e2e-only-other-namespaces", DC, W, "tcp/80", "allow"),
    ("e2e-only-other-namespaces", EXT, W, "tcp/80", "deny"),
    ("e2e-multiple-expressions", CC, W, "tcp/80", "allow"),
    ("e2e-multiple-expressions", CW, W, "tcp/80", "allow"),
    ("e2e-multiple-expressions", C, W, "tcp/80", "allow"),
    ("e2e-multiple-expressions", DC, W, "tcp/80", "deny"),
    ("e2e-multiple-expressions", FOO, W, "tcp/80", "deny"),
    ("e2e-multiple-expressions", A, W, "tcp/80", "deny"),
    ("e2e-egress-pod-and-ns", CC, DW, "tcp/80", "allow"),
    ("e2e-egress-pod-and-ns", CC, DC, "tcp/80", "deny"),
    ("e2e-egress-pod-and-ns", CC, W, "tcp/80", "deny"),
    ("e2e-egress-pod-and-ns", CC, CW, "tcp/80", "deny"),
]

SCENARIOS.update(
    {
        # Calico docs "kubernetes-default-deny": a GNP default deny, and other policies that allow
        "calico-doc-default-deny": HOST_ENDPOINT
        + gnp(
            "default-deny",
            "{selector: \"projectcalico.org/namespace not in  {'kube-system', 'calico-system', 'calico-apiserver'}\", types: [Ingress, Egress]}",
        )
        + gnp(
            "allow-web",
            "{order: 100, selector: \"app == 'web' || app == 'client'\", types: [Ingress, Egress], "
            "ingress: [{action: Allow, source: {selector: \"app == 'client'\"}}], "
            "egress: [{action: Allow, destination: {selector: \"app == 'web'\"}}]}",
        ),
    }
)

PROBES += [
    ("calico-doc-default-deny", C, W, "tcp/80", "allow"),
    ("calico-doc-default-deny", CC, DW, "tcp/443", "allow"),
    ("calico-doc-default-deny", A, W, "tcp/80", "deny"),
    ("calico-doc-default-deny", C, A, "tcp/80", "deny"),
    ("calico-doc-default-deny", C, DNS, "udp/53", "deny"),
    ("calico-doc-default-deny", DNS, EXT, "udp/53", "allow"),
    ("calico-doc-default-deny", EXT, HEP, "tcp/22", "deny"),
]

TRACES += [
    ("calico-doc-default-deny", A, W, "tcp/80", ["0|default|gnp:default-deny|deny|-1"]),
    ("calico-doc-default-deny", C, W, "tcp/80", ["0|default|gnp:allow-web|allow|0"]),
]

# ----------------------------------------------------------------------------------------------
# Running them


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    path: Path = tmp_path_factory.mktemp("inventory") / "cluster.yaml"
    path.write_text(yaml.safe_dump(kubectl_list()))
    return load_inventory(path)


_EVALUATORS: dict[tuple[int, str], Evaluator] = {}


def evaluator(inventory: Inventory, scenario: str) -> Evaluator:
    key = (id(inventory), scenario)
    ev = _EVALUATORS.get(key)
    if ev is None:
        docs = [d for d in yaml.safe_load_all(SCENARIOS[scenario]) if d is not None]
        ev = _EVALUATORS[key] = Evaluator(policies_from_objects(docs), inventory)
    return ev


def connect(inventory: Inventory, scenario: str, src: str, dst: str, proto_port: str) -> Connection:
    ev = evaluator(inventory, scenario)
    proto, port = proto_port.split("/")
    return ev.connection(ev.endpoint(src), ev.endpoint(dst), proto, int(port))


def _id(probe: tuple[str, str, str, str, Any]) -> str:
    scenario, src, dst, pp, _ = probe
    return f"{scenario}:{src}->{dst}:{pp}"


def test_there_are_enough_probes_and_every_scenario_is_probed() -> None:
    assert len(PROBES) >= 120
    assert {p[0] for p in PROBES} == set(SCENARIOS)


@pytest.mark.parametrize("probe", PROBES, ids=_id)
def test_the_engine_gives_the_rulebook_verdict(
    inventory: Inventory, probe: tuple[str, str, str, str, str]
) -> None:
    scenario, src, dst, pp, expected = probe
    conn = connect(inventory, scenario, src, dst, pp)
    assert conn.action == expected, (conn.egress.enforced_hits, conn.ingress.enforced_hits, conn.notes)
    # The inventory is complete: nothing may be left undecided.
    assert not conn.egress.undecided and not conn.ingress.undecided, conn.notes


@pytest.mark.parametrize("probe", PENDING, ids=_id)
def test_staged_policies_decide_only_the_pending_verdict(
    inventory: Inventory, probe: tuple[str, str, str, str, str]
) -> None:
    scenario, src, dst, pp, expected = probe
    assert connect(inventory, scenario, src, dst, pp).pending_action == expected


@pytest.mark.parametrize("probe", TRACES, ids=_id)
def test_the_ingress_trace_names_the_deciding_policies(
    inventory: Inventory, probe: tuple[str, str, str, str, list[str]]
) -> None:
    scenario, src, dst, pp, expected = probe
    assert list(connect(inventory, scenario, src, dst, pp).ingress.enforced_hits) == expected


@pytest.mark.parametrize("probe", PENDING_TRACES, ids=_id)
def test_the_pending_trace_treats_staged_policies_as_enforced(
    inventory: Inventory, probe: tuple[str, str, str, str, list[str]]
) -> None:
    scenario, src, dst, pp, expected = probe
    assert list(connect(inventory, scenario, src, dst, pp).ingress.pending_hits) == expected


def _pod_ip(ref: str) -> str:
    for pod_ref, ip, *_ in PODS:
        if pod_ref == ref:
            return ip.split(",")[0]
    return ref  # already an address


def test_every_probe_gives_the_same_verdict_when_both_sides_are_bare_addresses(inventory: Inventory) -> None:
    # rulebook V1: an address that belongs to a pod (or host endpoint) is that endpoint, on both sides.
    wrong = []
    for scenario, src, dst, pp, expected in PROBES:
        ev = evaluator(inventory, scenario)
        proto, port = pp.split("/")
        conn = ev.connection(
            Endpoint("net", ip=_pod_ip(src)), Endpoint("net", ip=_pod_ip(dst)), proto, int(port)
        )
        if conn.action != expected:
            wrong.append((scenario, src, dst, pp, expected))
    assert wrong == []


def test_every_probe_gives_the_same_verdict_for_fully_described_pods_without_an_inventory(
    inventory: Inventory,
) -> None:
    described = {}
    for ref, ips, labels, sa, ports in PODS:
        ns, name = ref.split("/")
        described[ref] = Endpoint(
            "wep",
            ns,
            name,
            labels,
            ips.split(",")[0],
            sa,
            named_ports=tuple(ContainerPort(n, normalize_protocol(p) or 6, c) for n, p, c in ports),
            namespace_labels={**NAMESPACES[ns], "kubernetes.io/metadata.name": ns},
            service_account_labels=SERVICE_ACCOUNTS[(ns, sa)],
        )
    evaluators: dict[str, Evaluator] = {}
    wrong = []
    for scenario, src, dst, pp, expected in PROBES:
        if scenario not in evaluators:
            docs = [d for d in yaml.safe_load_all(SCENARIOS[scenario]) if d is not None]
            evaluators[scenario] = Evaluator(policies_from_objects(docs), None)
        ev = evaluators[scenario]
        if scenario.startswith("dual-stack"):
            continue  # these name pods by bare addresses, which only the inventory resolves
        proto, port = pp.split("/")
        conn = ev.connection(
            described.get(src) or ev.endpoint(src), described.get(dst) or ev.endpoint(dst), proto, int(port)
        )
        if conn.action != expected or conn.egress.undecided or conn.ingress.undecided:
            wrong.append((scenario, src, dst, pp, expected))
    assert wrong == []
