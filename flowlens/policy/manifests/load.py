"""Loading policy manifests into a :class:`~flowlens.policy.model.PolicySet`.

Owns :func:`load_policies` and :func:`policies_from_objects`: every document of every file,
``kind: List`` (and ``*List``) unwrapped, each object handed to the module of its API family by
(API group, kind) — :data:`FAMILIES` — and the results collected: a later manifest with the same
(kind, namespace, name) replaces an earlier one with a note, unknown kinds are skipped with a
note, policies in a tier no manifest defines get a last tier with defaultAction Deny (rulebook
C1), doNotTrack and preDNAT policies are noted as not evaluated (rulebook C12). Errors name the
file, the document (1-based) and the field path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.errors import PolicyError, SelectorError
from flowlens.policy.manifests.calico import GROUPS as CALICO_GROUPS
from flowlens.policy.manifests.calico import KINDS as CALICO_KINDS
from flowlens.policy.manifests.documents import Invalid, bounded, manifest_files, read_documents
from flowlens.policy.manifests.networking import GROUP as K8S_GROUP
from flowlens.policy.manifests.networking import KINDS as K8S_KINDS
from flowlens.policy.model import (
    DEFAULT_TIER,
    DEFAULT_TIER_ORDER,
    HostEndpoint,
    NetworkSet,
    Policy,
    PolicySet,
    Tier,
)

Resource = Policy | Tier | NetworkSet | HostEndpoint
Reader = Callable[[Mapping[str, Any], str], Resource]

#: Per API family: its API groups and its readers by kind. A new family (say
#: ``policy.networking.k8s.io``) is a sibling module with ``GROUPS``/``KINDS`` and one line here.
FAMILIES: tuple[tuple[tuple[str, ...], Mapping[str, Reader]], ...] = (
    ((K8S_GROUP,), K8S_KINDS),
    (CALICO_GROUPS, CALICO_KINDS),
)

#: Tiers Calico defines itself: a policy in one of them needs no Tier manifest.
_BUILTIN_TIER_NAMES = frozenset(
    {DEFAULT_TIER, "kube-admin", "kube-baseline", "adminnetworkpolicy", "baselineadminnetworkpolicy"}
)


@dataclass
class _Loader:
    policies: dict[tuple[str, str | None, str], Policy]
    tiers: dict[str, Tier]
    network_sets: dict[tuple[str | None, str], NetworkSet]
    host_endpoints: dict[str, HostEndpoint]
    notes: list[str]


def load_policies(paths: Iterable[str | Path] | str | Path) -> PolicySet:
    """Load every policy, tier, network set and host endpoint from ``paths``.

    Raises :class:`PolicyError` naming ``file: document N: field.path`` for an invalid manifest.
    """
    loader = _Loader({}, {}, {}, {}, [])
    for path in manifest_files(paths):
        for index, doc in enumerate(read_documents(path), start=1):
            if doc is None:
                continue
            _load_object(loader, doc, path, index, "")
    return _finish(loader)


def policies_from_objects(objects: Iterable[Mapping[str, Any]], origin: str = "<objects>") -> PolicySet:
    """Load manifests that are already parsed (dicts), e.g. from another tool or a test."""
    loader = _Loader({}, {}, {}, {}, [])
    for index, doc in enumerate(objects, start=1):
        if doc is not None:
            _load_object(loader, doc, Path(origin), index, "")
    return _finish(loader)


def _finish(loader: _Loader) -> PolicySet:
    notes = list(loader.notes)
    tiers = dict(loader.tiers)
    for policy in loader.policies.values():
        if policy.tier not in tiers and policy.tier not in _BUILTIN_TIER_NAMES:
            notes.append(
                f"{policy.origin}: tier {policy.tier!r} of {policy.display} is not defined; "
                "it is treated as a tier with no order (last) and defaultAction Deny"
            )
            tiers[policy.tier] = Tier(policy.tier, None, "Deny")
        skipped = _not_evaluated(policy)
        if skipped:
            notes.append(f"{policy.origin}: {policy.display} {skipped}")
    return PolicySet(
        policies=tuple(sorted(loader.policies.values(), key=lambda p: (p.kind, p.namespace or "", p.name))),
        tiers=tuple(sorted(tiers.values(), key=lambda t: t.name)),
        network_sets=tuple(sorted(loader.network_sets.values(), key=lambda s: (s.namespace or "", s.name))),
        host_endpoints=tuple(sorted(loader.host_endpoints.values(), key=lambda h: h.name)),
        notes=tuple(notes),
    )


def _not_evaluated(policy: Policy) -> str:
    if policy.do_not_track:
        return "is a doNotTrack policy: it acts before connection tracking and leaves no flow logs; it is not evaluated"
    if policy.pre_dnat:
        return "is a preDNAT policy: it acts on host endpoints before DNAT; it is not evaluated"
    return ""


def _load_object(loader: _Loader, doc: Any, path: Path, index: int, prefix: str) -> None:
    where = f"{path}: document {index}"
    if not isinstance(doc, Mapping):
        raise PolicyError(
            f"{where}{': ' + prefix if prefix else ''}: expected a mapping with apiVersion and kind"
        )
    kind = doc.get("kind")
    api_version = str(doc.get("apiVersion") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if isinstance(kind, str) and (kind == "List" or kind.endswith("List")) and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise PolicyError(f"{where}: {prefix}items: expected a list")
        for i, item in enumerate(items):
            _load_object(loader, item, path, index, f"{prefix}items[{i}].")
        return
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), Mapping) else None
    label = f"{kind} {name}" if name else str(kind)
    origin = f"{path}, document {index}"
    reader = _reader(group, kind)
    if reader is None:
        loader.notes.append(
            f"{origin}: skipped {label} ({api_version or 'no apiVersion'}): not a policy resource flowlens evaluates"
        )
        return
    try:
        resource = reader(doc, origin)
    except Invalid as exc:
        raise PolicyError(f"{where}: {prefix}{bounded(exc.path, 200)}: {bounded(exc.message)}") from None
    except SelectorError as exc:
        raise PolicyError(f"{where}: {prefix}{bounded(str(exc), 1000)}") from None
    _add(loader, resource, origin, str(kind))


def _reader(group: str, kind: Any) -> Reader | None:
    if not isinstance(kind, str):
        return None
    for groups, kinds in FAMILIES:
        if group in groups and kind in kinds:
            return kinds[kind]
    return None


def _add(loader: _Loader, resource: Resource, origin: str, kind: str) -> None:
    if isinstance(resource, Policy):
        if resource.key in loader.policies:
            loader.notes.append(
                f"{origin}: {resource.display} replaces an earlier manifest with the same name"
            )
        loader.policies[resource.key] = resource
    elif isinstance(resource, Tier):
        if resource.name in loader.tiers:
            loader.notes.append(f"{origin}: Tier {resource.name} replaces an earlier definition")
        loader.tiers[resource.name] = resource
        if resource.name == DEFAULT_TIER and (
            resource.order != DEFAULT_TIER_ORDER or resource.default_action != "Deny"
        ):
            loader.notes.append(
                f"{origin}: the default tier always has order 1000000 and defaultAction Deny; "
                "the manifest's values are ignored"
            )
            loader.tiers[resource.name] = Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, "Deny")
    elif isinstance(resource, NetworkSet):
        key = (resource.namespace, resource.name)
        if key in loader.network_sets:
            loader.notes.append(f"{origin}: {kind} {resource.name} replaces an earlier definition")
        loader.network_sets[key] = resource
    else:
        if resource.name in loader.host_endpoints:
            loader.notes.append(f"{origin}: HostEndpoint {resource.name} replaces an earlier definition")
        loader.host_endpoints[resource.name] = resource


def load_candidate(policies: Iterable[str | Path], base: Iterable[str | Path] = ()) -> PolicySet:
    """The policy set ``simulate`` and ``explain`` evaluate: ``policies`` on top of ``base`` (the
    policies in force), a candidate replacing the base policy of the same kind, namespace and name;
    without ``base``, ``policies`` alone."""
    candidate = load_policies(list(policies))
    base = list(base)
    return load_policies(base).merged(candidate) if base else candidate
