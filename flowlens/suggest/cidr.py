"""CIDR arithmetic for external peers: exact blocks, bounded aggregation, and breadth counts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
ANY_V4 = "0.0.0.0/0"


def host_network(ip: str) -> IPNetwork:
    """The /32 (or /128) of one logged address; raises ValueError for text that is no IP."""
    addr = ipaddress.ip_address(ip.strip())
    return ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}")


def _sort_key(net: IPNetwork) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), net.prefixlen)


def aggregate(addresses: Iterable[IPNetwork], max_extra: int) -> list[IPNetwork]:
    """The CIDRs that cover ``addresses``, merged as far as ``max_extra`` unobserved addresses allow.

    Exact merging (adjacent blocks that fill a larger block) is always done; beyond that the merge
    that admits the fewest extra addresses is taken first (ties: lowest address) until the next
    one would exceed the budget. Deterministic for any input order.
    """
    result: list[IPNetwork] = []
    for version in (4, 6):
        nets = sorted({n for n in addresses if n.version == version}, key=_sort_key)
        if not nets:
            continue
        blocks: list[IPNetwork] = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
        extra = 0
        while max_extra > 0 and len(blocks) > 1:
            best: tuple[int, int, int, IPNetwork] | None = None
            for i in range(len(blocks) - 1):
                a, b = blocks[i], blocks[i + 1]
                sup = a
                while not (b.network_address in sup and b.broadcast_address in sup):
                    sup = sup.supernet()
                covered = [x for x in blocks if x.subnet_of(sup)]  # type: ignore[arg-type]
                delta = sup.num_addresses - sum(x.num_addresses for x in covered)
                cand = (delta, int(sup.network_address), sup.prefixlen, sup)
                if best is None or cand[:3] < best[:3]:
                    best = cand
            assert best is not None
            delta, _, _, sup = best
            if extra + delta > max_extra:
                break
            extra += delta
            blocks = sorted(
                [x for x in blocks if not x.subnet_of(sup)] + [sup],  # type: ignore[arg-type]
                key=_sort_key,
            )
        result.extend(blocks)
    return result


def count_addresses(nets: Sequence[str], excepts: Sequence[str] = ()) -> int:
    """How many addresses the CIDRs admit, minus the excepted ones inside them."""
    total = 0
    parsed = [ipaddress.ip_network(n, strict=False) for n in nets]
    total += sum(n.num_addresses for n in ipaddress.collapse_addresses([p for p in parsed if p.version == 4]))
    total += sum(n.num_addresses for n in ipaddress.collapse_addresses([p for p in parsed if p.version == 6]))
    for ex in {ipaddress.ip_network(e, strict=False) for e in excepts}:
        if any(ex.version == p.version and ex.subnet_of(p) for p in parsed):  # type: ignore[arg-type]
            total -= ex.num_addresses
    return total


def is_private(ip: str) -> bool:
    """Calico's ``pvt``: inside RFC 1918 (IPv4 only; everything else is ``pub``)."""
    addr = ipaddress.ip_address(ip)
    return addr.version == 4 and any(addr in ipaddress.ip_network(n) for n in RFC1918)
