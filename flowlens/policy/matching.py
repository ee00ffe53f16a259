"""Rule matching: whether one compiled rule matches one packet, three-valued.

Owns :class:`Matcher`. A rule matches when every field it specifies matches (rulebook C10, C11):
protocol and notProtocol, ipVersion, and the source and destination entity rules (nets and
notNets, the compiled selector and notSelector, ports and notPorts, services). The answer is
True, False, or None when a fact the flow record lacks decides it (rulebook U1); the reason comes
with it, in words, for notes and ``explain``. ICMP and HTTP criteria are not evaluated
(rulebook U5).
"""

from __future__ import annotations

from flowlens.policy.compiled import CompiledEntity, CompiledRule
from flowlens.policy.endpoints import PRIVATE, Side, may_hold
from flowlens.policy.model import IPAddress, IPNetwork, NamedPort, Policy, Port, PortRange, protocol_name
from flowlens.policy.selector import Selector


def _in_nets(ip: IPAddress, nets: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def nets_match(nets: tuple[IPNetwork, ...], side: Side) -> bool | None:
    """True/False when every possible address of the side is / is not in ``nets``, else None."""
    if side.ips is not None:
        hits = [_in_nets(ip, nets) for ip in side.ips]
        if all(hits):
            return True
        if not any(hits):
            return False
        return None
    if side.ip_class is not None:
        if not any(may_hold(n, side.ip_class) for n in nets):
            return False
        if side.ip_class == "pvt" and all(
            any(n.version == 4 and r.subnet_of(n) for n in nets)  # type: ignore[arg-type]
            for r in PRIVATE
        ):
            return True
    return None


class Matcher:
    """Matches compiled rules against packets; memoizes the label keys of each selector."""

    def __init__(self) -> None:
        self._keys_cache: dict[Selector, frozenset[str]] = {}

    def keys(self, sel: Selector) -> frozenset[str]:
        """Every label key ``sel`` reads (to tell whether it reads an unknown one)."""
        keys = self._keys_cache.get(sel)
        if keys is None:
            keys = sel.label_keys
            self._keys_cache[sel] = keys
        return keys

    def rule(
        self,
        crule: CompiledRule,
        policy: Policy,
        src: Side,
        dst: Side,
        proto: int | str | None,
        port: int | None,
        notes: set[str],
    ) -> tuple[bool | None, str]:
        """Whether ``crule`` of ``policy`` matches the packet ``src`` -> ``dst`` ``proto``/``port``,
        and why not (or what is unknown). Notes about criteria not evaluated go to ``notes``."""
        rule = crule.rule
        unknown: list[str] = []
        if rule.protocol is not None:
            if proto is None:
                unknown.append("the flow's protocol is not known")
            elif proto != rule.protocol:
                return False, f"protocol {protocol_name(proto)} is not {protocol_name(rule.protocol)}"
        if rule.not_protocol is not None:
            if proto is None:
                unknown.append("the flow's protocol is not known")
            elif proto == rule.not_protocol:
                return False, f"protocol {protocol_name(proto)} is excluded by notProtocol"
        if rule.ip_version is not None:
            known = [ip for side in (src, dst) if side.ips for ip in side.ips]
            if known and all(ip.version != rule.ip_version for ip in known):
                return False, f"the rule is for IPv{rule.ip_version}"
        # Source, then destination (unrolled: this runs for every rule of every walk).
        entity = crule.src
        if not entity.empty:
            result, why = self._entity(entity, src, False, rule.protocol, proto, port, unknown)
            if result is False:
                return False, f"source: {why}"
        entity = crule.dst
        if not entity.empty:
            result, why = self._entity(entity, dst, True, rule.protocol, proto, port, unknown)
            if result is False:
                return False, f"destination: {why}"
        if rule.has_icmp:
            notes.add(
                f"{policy.display}: ICMP type/code criteria are not evaluated (flow logs carry no ICMP type)"
            )
        if rule.has_http:
            notes.add(f"{policy.display}: HTTP match criteria are not evaluated (application layer)")
        if unknown:
            return None, "; ".join(sorted(set(unknown)))
        return True, ""

    def _entity(
        self,
        ce: CompiledEntity,
        side: Side,
        is_dest: bool,
        rule_proto: int | str | None,
        proto: int | str | None,
        port: int | None,
        unknown: list[str],
    ) -> tuple[bool | None, str]:
        er = ce.source
        if ce.empty:
            return True, ""
        if er.nets:
            inside = nets_match(er.nets, side)
            if inside is None:
                unknown.append(f"the IP of {side.display} is not known (masked in the flow log)")
            elif not inside:
                return False, f"the IP of {side.display} is not in {', '.join(map(str, er.nets))}"
        if er.not_nets:
            inside = nets_match(er.not_nets, side)
            if inside is None:
                unknown.append(f"the IP of {side.display} is not known (masked in the flow log)")
            elif inside:
                return False, f"the IP of {side.display} is in notNets {', '.join(map(str, er.not_nets))}"
        if ce.positive is not None:
            result = self._any(ce.positive, side, unknown)
            if result is False:
                return False, f"{side.display} is not selected by {ce.selection}"
        if ce.negative is not None:
            result = self._any(ce.negative, side, unknown)
            if result is True:
                return False, f"{side.display} is excluded by notSelector {ce.negative}"
        if er.ports or er.not_ports:
            if not is_dest:
                unknown.append("source ports are not recorded in flow logs")
            else:
                # A port name without a protocol (a ClusterNetworkPolicy named port, rulebook G7)
                # matches with the protocol the endpoint declares it with.
                port_proto = rule_proto if rule_proto is not None else proto
                if er.ports:
                    r = _ports(er.ports, port, port_proto, side, unknown)
                    if r is False:
                        return False, f"port {port} is not in {', '.join(map(str, er.ports))}"
                if er.not_ports:
                    r = _ports(er.not_ports, port, port_proto, side, unknown)
                    if r is True:
                        return False, f"port {port} is in notPorts {', '.join(map(str, er.not_ports))}"
        if er.services:
            unknown.append(
                "Kubernetes service matches need the service's endpoints, which flowlens does not load"
            )
        return True, ""

    def _any(self, sel: Selector, side: Side, unknown: list[str]) -> bool | None:
        # Selectors match known endpoints and network sets only (rulebook C11): a masked address
        # may be one we cannot see, so "no identity matches" is undecided there.
        keys = self.keys(sel)
        result: bool | None = False
        for ident in side.idents:
            why = ident.view.undecided(keys)
            if why is not None:
                unknown.append(why)
                result = None
                continue
            if sel.matches(ident.view.labels):
                return True
        if result is False and not side.complete:
            unknown.append(f"the IP of {side.display} is not known, so its network sets are not known")
            return None
        return result


def _ports(
    ports: tuple[Port, ...],
    port: int | None,
    rule_proto: int | str | None,
    side: Side,
    unknown: list[str],
) -> bool | None:
    # Named ports are the destination endpoint's (rulebook K13, C11).
    if port is None:
        unknown.append("the flow's destination port is not known")
        return None
    undecided = False
    for p in ports:
        if isinstance(p, PortRange):
            if p.contains(port):
                return True
        elif isinstance(p, NamedPort):
            if side.named_ports is None:
                undecided = True
                unknown.append(f"the named ports of {side.display} are not known (give --inventory)")
                continue
            for cp in side.named_ports:
                if (
                    cp.name == p.name
                    and cp.port == port
                    and (rule_proto is None or cp.protocol == rule_proto)
                ):
                    return True
    return None if undecided else False
