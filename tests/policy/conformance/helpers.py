"""The conformance vectors of ``tests/policy/conformance/``: their cluster, their compact policy
language, and how a vector turns into manifests and probes.

A vector file holds one entry per upstream conformance test of kubernetes-sigs/network-policy-api
(by its ShortName): the policies in a compact form, and one step per upstream subtest, whose
changes apply on top of the previous steps' (as the upstream subtests patch the live policies)
and whose probes say which connections are allowed. The cluster is ours (namespaces ``lions``,
``snakes``, ``badgers``, ``eagles`` with two pods each, and ``forest``, whose pods use the host
network), shaped like the upstream base manifests.

Rules are one line: ``<Action> from|to <peer> [<peer> ...] [on <port>,<port>...]`` with peers
``ns:<namespace>`` (namespaces by name), ``house:<h>`` (namespaces labelled ``house=<h>``),
``pods:<h>`` (pods labelled ``house=<h>`` in namespaces labelled ``house=<h>``),
``net:<cidr>,<cidr>``, ``ips:<pod>,<pod>`` (the pods' addresses as /32 networks) and
``nodes:<key>=<value>``; ports ``tcp/80``, ``udp/5353-5354``, ``named/web``. Probes are
``<client> -> <server> <proto>/<port> allow|deny``, optionally followed by
``(upstream: allow|deny; <why>)`` where Calico, and so flowlens, differs from the upstream
expectation.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowlens.policy import Evaluator, Inventory, policies_from_objects
from flowlens.policy.inventory import Namespace, Pod, ServiceAccount
from flowlens.policy.model import ContainerPort, Endpoint, freeze_labels
from flowlens.policy.versions import CalicoVersion

FOLDER = Path(__file__).parent
HOUSES = ("lions", "snakes", "badgers", "eagles")
NODES = {"forest-0": "192.168.10.1", "forest-1": "192.168.10.2"}
_PROBE = re.compile(
    r"^(?P<src>[\w-]+) -> (?P<dst>[\w-]+) (?P<proto>\w+)/(?P<port>\d+) (?P<verdict>allow|deny)"
    r"(?: \(upstream: (?P<upstream>allow|deny); (?P<why>.+)\))?$"
)


def pod_ip(pod: str) -> str:
    house, index = pod.rsplit("-", 1)
    return f"10.244.{HOUSES.index(house) + 1}.{10 + int(index)}"


def inventory() -> Inventory:
    """Four namespaces with two pods each (named ports ``web`` TCP 80 and ``dns`` UDP 53), and
    the host-network namespace ``forest``."""
    namespaces = tuple(
        Namespace(h, freeze_labels({"house": h, "kubernetes.io/metadata.name": h}))
        for h in (*HOUSES, "forest")
    )
    pods = tuple(
        Pod(
            namespace=h,
            name=f"{h}-{i}",
            labels=freeze_labels({"house": h}),
            ips=(pod_ip(f"{h}-{i}"),),
            service_account="default",
            node=f"node-{i}",
            named_ports=(ContainerPort("web", 6, 80), ContainerPort("dns", 17, 53)),
        )
        for h in HOUSES
        for i in (0, 1)
    )
    accounts = tuple(ServiceAccount(h, "default", freeze_labels({})) for h in (*HOUSES, "forest"))
    return Inventory(namespaces=namespaces, service_accounts=accounts, pods=pods)


# --------------------------------------------------------------------------------------------
# Policies


def _selector(key: str, value: str) -> dict[str, Any]:
    return {"matchLabels": {key: value}}


def _subject(text: str) -> dict[str, Any]:
    kind, _, value = text.partition(":")
    if kind == "ns":
        return {"namespaces": _selector("kubernetes.io/metadata.name", value)}
    if kind == "house":
        return {"namespaces": _selector("house", value)}
    return {
        "pods": {"namespaceSelector": _selector("house", value), "podSelector": _selector("house", value)}
    }


def _peer(text: str) -> dict[str, Any]:
    kind, _, value = text.partition(":")
    if kind in ("ns", "house", "pods"):
        return _subject(text)
    if kind == "net":
        return {"networks": value.split(",")}
    if kind == "ips":
        return {"networks": [f"{pod_ip(p)}/32" for p in value.split(",")]}
    if kind == "nodes":
        key, _, val = value.partition("=")
        return {"nodes": _selector(key, val)}
    raise ValueError(f"unknown peer {text!r}")


def _ports(text: str, modern: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in text.split(","):
        proto, _, port = item.partition("/")
        if proto == "named":
            out.append({"destinationNamedPort": port} if modern else {"namedPort": port})
            continue
        first, _, last = port.partition("-")
        if modern:
            dest = {"range": {"start": int(first), "end": int(last)}} if last else {"number": int(first)}
            out.append({proto: {"destinationPort": dest}})
        elif last:
            out.append({"portRange": {"protocol": proto.upper(), "start": int(first), "end": int(last)}})
        else:
            out.append({"portNumber": {"protocol": proto.upper(), "port": int(first)}})
    return out


def rule(text: str, index: int, modern: bool) -> dict[str, Any]:
    """One rule of the compact language as the API writes it."""
    head, _, ports = text.partition(" on ")
    action, word, *peers = head.split()
    out: dict[str, Any] = {"name": f"rule-{index}", "action": action, word: [_peer(p) for p in peers]}
    if ports:
        out["protocols" if modern else "ports"] = _ports(ports, modern)
    return out


def manifest(policy: dict[str, Any]) -> dict[str, Any]:
    """A compact policy (``kind`` CNP, ANP or BANP) as its manifest."""
    kind = policy["kind"]
    modern = kind == "CNP"
    spec: dict[str, Any] = {"subject": _subject(policy["subject"])}
    if modern:
        spec["tier"] = policy["tier"]
    if "priority" in policy:
        spec["priority"] = policy["priority"]
    for direction in ("ingress", "egress"):
        if policy.get(direction):
            spec[direction] = [rule(r, i, modern) for i, r in enumerate(policy[direction])]
    return {
        "apiVersion": "policy.networking.k8s.io/" + ("v1alpha2" if modern else "v1alpha1"),
        "kind": {
            "CNP": "ClusterNetworkPolicy",
            "ANP": "AdminNetworkPolicy",
            "BANP": "BaselineAdminNetworkPolicy",
        }[kind],
        "metadata": {"name": policy["name"]},
        "spec": spec,
    }


def network_policy(np: dict[str, Any]) -> dict[str, Any]:
    """The integration tests' NetworkPolicy: all pods of a namespace, ingress from and egress to
    the namespaces of one house."""
    peer = [{"namespaceSelector": _selector("house", np["peers_house"])}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": np["name"], "namespace": np["namespace"]},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": peer}],
            "egress": [{"to": peer}],
        },
    }


# --------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class Probe:
    source: str
    dest: str
    proto: str
    port: int
    verdict: str  # what Calico (and flowlens) gives
    upstream: str  # what the upstream test expects
    why: str  # why they differ ('' when they do not)

    @classmethod
    def parse(cls, text: str) -> Probe:
        m = _PROBE.match(text)
        if m is None:
            raise ValueError(f"bad probe {text!r}")
        return cls(
            m["src"],
            m["dst"],
            m["proto"],
            int(m["port"]),
            m["verdict"],
            m["upstream"] or m["verdict"],
            m["why"] or "",
        )


def apply_change(state: dict[str, Any], change: str) -> None:
    """Apply one upstream patch (``swap``, ``action``, ``priority``, ``ports``, ``prepend``,
    ``delete-networkpolicy``) to a test's policies, in place."""
    op, *args = change.split(" ", 1)[0], *change.split(" ")[1:]
    policies = {p["name"]: p for p in state["policies"]}
    if op == "swap":
        name, direction, a, b = args
        rules = policies[name][direction]
        rules[int(a)], rules[int(b)] = rules[int(b)], rules[int(a)]
    elif op == "action":
        name, direction, index, action = args
        rules = policies[name][direction]
        rules[int(index)] = action + " " + rules[int(index)].split(" ", 1)[1]
    elif op == "priority":
        name, value = args
        policies[name]["priority"] = int(value)
    elif op == "ports":
        name, direction, index, ports = args
        rules = policies[name][direction]
        rules[int(index)] = rules[int(index)].split(" on ")[0] + " on " + ports
    elif op == "prepend":
        name, direction, *text = args
        policies[name][direction].insert(0, " ".join(text))
    elif op == "delete-networkpolicy":
        (ref,) = args
        namespace, name = ref.split("/")
        state["networkPolicies"] = [
            np for np in state["networkPolicies"] if (np["namespace"], np["name"]) != (namespace, name)
        ]
    else:
        raise ValueError(f"unknown change {change!r}")


def load(file: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FOLDER / file).read_text(encoding="utf-8"))
    return data


def walk(test: dict[str, Any], version: CalicoVersion) -> list[tuple[str, Probe, str, tuple[str, ...]]]:
    """Every probe of a test, with the verdict flowlens gives after the step's changes, and the
    loader's notes: (subtest, probe, verdict, notes)."""
    state = {
        "policies": copy.deepcopy(test["policies"]),
        "networkPolicies": copy.deepcopy(test.get("networkPolicies", [])),
    }
    inv = inventory()
    out = []
    for step in test["steps"]:
        for change in step.get("change", []):
            apply_change(state, change)
        objects = [manifest(p) for p in state["policies"]] + [
            network_policy(np) for np in state["networkPolicies"]
        ]
        policy_set = policies_from_objects(objects, origin=test["upstream"])
        evaluator = Evaluator(policy_set, inv, calico_version=version)
        for text in step["expect"]:
            probe = Probe.parse(text)
            src = evaluator.endpoint(f"{probe.source.rsplit('-', 1)[0]}/{probe.source}")
            dst = (
                Endpoint("net", ip=NODES[probe.dest])
                if probe.dest in NODES
                else evaluator.endpoint(f"{probe.dest.rsplit('-', 1)[0]}/{probe.dest}")
            )
            verdict = evaluator.connection(src, dst, probe.proto, probe.port).action
            out.append((step["subtest"], probe, verdict, evaluator.policy_set.notes))
    return out
