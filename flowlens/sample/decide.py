"""Decisions computed by the policy engine (:mod:`flowlens.policy`) for the model's flows.

The generator asks for a decision once per distinct flow and caches it; this module turns the
model's endpoints into :class:`flowlens.policy.Endpoint` objects (with every fact the inventory
gives: labels, namespace and service-account labels, named ports) and the engine's
:class:`~flowlens.policy.Decision` into the generator's :class:`Verdict`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowlens.errors import PolicyError
from flowlens.sample.model import ClusterModel, Connection
from flowlens.sample.records import Decide, Member, Verdict

if TYPE_CHECKING:
    from flowlens.policy import Endpoint, Inventory, PolicySet


def model_inventory(model: ClusterModel) -> Inventory:
    """The model's inventory as the policy engine's :class:`~flowlens.policy.Inventory`."""
    from flowlens.policy.inventory import Inventory, Namespace, Pod, ServiceAccount
    from flowlens.policy.model import ContainerPort, freeze_labels

    namespaces = tuple(
        Namespace(ns, freeze_labels(model.namespace_labels(ns))) for ns in sorted(model.namespaces)
    )
    sas = sorted(
        {(ns, "default") for ns in model.namespaces}
        | {(w.namespace, w.service_account) for w in model.workloads}
    )
    accounts = tuple(ServiceAccount(ns, name, freeze_labels({})) for ns, name in sas)
    pods = tuple(
        Pod(
            namespace=p.namespace,
            name=p.name,
            labels=freeze_labels(p.labels),
            ips=(p.ip,),
            service_account=p.service_account,
            node=p.node,
            named_ports=tuple(ContainerPort(cp.name, cp.protocol, cp.port) for cp in p.ports if cp.name),
            generate_name=p.generate_name,
            phase="Running",
        )
        for p in sorted(model.pods, key=lambda p: (p.namespace, p.name))
    )
    return Inventory(namespaces=namespaces, service_accounts=accounts, pods=pods)


def _endpoint(m: Member, namespace_labels: Mapping[str, Mapping[str, str]]) -> Endpoint:
    from flowlens.policy import Endpoint
    from flowlens.policy.model import ContainerPort

    if m.type == "wep":
        return Endpoint(
            kind="wep",
            namespace=m.namespace,
            name=m.name,
            labels=dict(m.labels),
            ip=m.ip,
            service_account=m.service_account,
            named_ports=tuple(ContainerPort(n, p, port) for n, p, port in m.named_ports),
            namespace_labels=namespace_labels[m.namespace],
            service_account_labels={},
        )
    if m.type == "hep":
        return Endpoint(kind="hep", name=m.name, labels=dict(m.labels), ip=m.ip, named_ports=())
    return Endpoint(kind="net", ip=m.ip)


def _cidrs(policy_set: PolicySet) -> tuple[Any, ...]:
    """Every CIDR the policies can test an address against (rule nets and network sets)."""
    nets: set[Any] = set()
    for policy in policy_set.policies:
        for rule in (*policy.ingress, *policy.egress):
            for er in (rule.source, rule.destination):
                nets.update(er.nets)
                nets.update(er.not_nets)
    for nset in policy_set.network_sets:
        nets.update(nset.nets)
    return tuple(sorted(nets, key=str))


def engine_decisions(model: ClusterModel) -> Decide | None:
    """Decisions from the policy engine over the model's policies folder, or None when the model
    names no policies folder.

    An address outside the cluster matters to Calico only through the CIDRs it falls in, so such
    addresses are evaluated once per distinct CIDR membership (thousands of scanner addresses
    cost one evaluation per destination and port, not one each).
    """
    if model.policies_dir is None:
        return None
    from flowlens.policy import Evaluator, FlowKey, load_policies

    if not model.policies_dir.is_dir():
        raise PolicyError(f"the model's policies folder {model.policies_dir} does not exist")
    policy_set = load_policies(model.policies_dir)
    evaluator = Evaluator(policy_set, model_inventory(model))
    cidrs = _cidrs(policy_set)
    heps = {ip for h in policy_set.host_endpoints for ip in h.expected_ips}
    ns_labels = {ns: model.namespace_labels(ns) for ns in model.namespaces}
    endpoints: dict[tuple[str, ...], Endpoint] = {}
    classes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    decisions: dict[tuple[Any, ...], Verdict] = {}

    def ep(m: Member) -> Endpoint:
        e = endpoints.get(m.full_id)
        if e is None:
            e = endpoints[m.full_id] = _endpoint(m, ns_labels)
        return e

    def identity(m: Member) -> tuple[Any, ...]:
        if m.type != "net" or m.ip in heps:
            return m.full_id
        c = classes.get(m.full_id)
        if c is None:
            addr = ipaddress.ip_address(m.ip)
            c = classes[m.full_id] = ("net", tuple(addr.version == n.version and addr in n for n in cidrs))
        return c

    def decide(conn: Connection, reporter: str, src: Member, dst: Member, proto: str, port: int) -> Verdict:
        key = (reporter, identity(src), identity(dst), proto, port)
        v = decisions.get(key)
        if v is not None:
            return v
        d = evaluator.evaluate(FlowKey(reporter, ep(src), ep(dst), proto, port))
        if not d.enforced:
            raise PolicyError(
                f"the policy engine gave no trace for {conn.id} ({reporter}): {'; '.join(d.notes) or 'no reason'}"
            )
        v = decisions[key] = Verdict(d.action, tuple(d.enforced), tuple(d.pending))
        return v

    return decide
