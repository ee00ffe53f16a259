"""Observed traffic as suggest sees it: report groups from the store, workloads and edges.

This module owns the reading of Calico's aggregation artefacts:

* a record may stand for many pods (``name_aggr`` like ``frontend-7d4f8c9b5-*``) whose labels are
  the *intersection* over those pods, so a workload's labels are intersected again over every
  record that names it, and only labels every pod carries are ever used in a selector;
* IPs are NULL at aggregation level 2, so exact CIDRs are only used where IPs were logged;
* the same connection is reported by the source (egress side) and by the destination (ingress
  side): counts are summed per reporter and the larger reporter's count is the edge's count,
  never the sum of both; an edge needs only one report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Label keys whose values change per rollout, per pod or per run: never used in a selector.
UNSTABLE_LABEL_KEYS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index",
        "security.istio.io/tlsMode",
        "service.istio.io/canonical-revision",
    }
)
UNSTABLE_LABEL_PREFIXES = ("projectcalico.org/",)

DEFAULT_LABEL_KEYS = ("app", "app.kubernetes.io/name", "k8s-app")

Labels = tuple[tuple[str, str], ...]


def is_stable_label(key: str) -> bool:
    """Whether ``key`` may identify a workload (not per-rollout, per-pod or Calico-internal)."""
    return key not in UNSTABLE_LABEL_KEYS and not key.startswith(UNSTABLE_LABEL_PREFIXES)


@dataclass(frozen=True)
class LoggedEndpoint:
    """One side of a report group, exactly as logged (namespace None for Calico's '-')."""

    type: str
    namespace: str | None
    name_aggr: str
    ip: str | None
    labels: Labels | None  # None: labels were not logged


@dataclass(frozen=True)
class Report:
    """A group of flow records with the same reporter, verdict, endpoints, proto and port."""

    reporter: str
    action: str
    source: LoggedEndpoint
    dest: LoggedEndpoint
    proto: str
    dest_port: int | None
    records: int
    connections: int
    live_connections: int
    bytes: int
    first_seen: dt.datetime
    last_seen: dt.datetime


def _ns(value: Any) -> str | None:
    return None if value in (None, "", "-") else str(value)


def _labels(value: Any) -> Labels | None:
    if value is None:
        return None
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in items))


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raise TypeError(f"expected a timestamp, got {value!r}")


def reports_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Report]:
    """Turn ``suggest-edges`` rows into sorted :class:`Report` values."""
    out = []
    for r in rows:
        src = LoggedEndpoint(
            str(r["source_type"]),
            _ns(r["source_namespace"]),
            str(r["source_name_aggr"] or "-"),
            r["source_ip"] or None,
            _labels(r["source_labels"]),
        )
        dst = LoggedEndpoint(
            str(r["dest_type"]),
            _ns(r["dest_namespace"]),
            str(r["dest_name_aggr"] or "-"),
            r["dest_ip"] or None,
            _labels(r["dest_labels"]),
        )
        port = r["dest_port"]
        out.append(
            Report(
                reporter=str(r["reporter"]),
                action=str(r["action"]),
                source=src,
                dest=dst,
                proto=str(r["proto"]).lower(),
                dest_port=None if port is None or int(port) <= 0 else int(port),
                records=int(r["records"]),
                connections=int(r["connections"] or 0),
                live_connections=int(r["live_connections"] or 0),
                bytes=int(r["bytes"] or 0),
                first_seen=_utc(r["first_seen"]),
                last_seen=_utc(r["last_seen"]),
            )
        )
    out.sort(key=report_sort_key)
    return out


def observed_span(reports: Sequence[Report]) -> str:
    """The span of traffic the reports saw, for a file header: the observed span, not the
    requested window, so a relative --since does not change the bytes."""
    if not reports:
        return "no traffic observed"
    first = min(r.first_seen for r in reports).strftime("%Y-%m-%dT%H:%M:%SZ")
    last = max(r.last_seen for r in reports).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"traffic observed {first} .. {last}"


def _endpoint_key(ep: LoggedEndpoint) -> tuple[str, str, str, str, bool, Labels]:
    return (ep.type, ep.namespace or "", ep.name_aggr, ep.ip or "", ep.labels is None, ep.labels or ())


def report_sort_key(rep: Report) -> tuple[object, ...]:
    """A total order on reports (None sorts first), independent of the order rows arrived in."""
    return (
        rep.reporter,
        rep.action,
        _endpoint_key(rep.source),
        _endpoint_key(rep.dest),
        rep.proto,
        -1 if rep.dest_port is None else rep.dest_port,
        rep.records,
        rep.connections,
        rep.live_connections,
        rep.bytes,
        rep.first_seen,
        rep.last_seen,
    )


@dataclass(frozen=True, order=True)
class Workload:
    """Pods of one namespace that share a selector: the unit policies are written for.

    ``how`` says how the selector was chosen: ``label-keys`` (one of ``--label-keys``),
    ``fallback`` (the stable labels every pod of it carries, because none of the keys is there)
    or ``unlabelled`` (no usable labels: the selector is empty and selects every pod).
    """

    namespace: str
    selector: Labels
    how: str = field(compare=False)
    members: tuple[str, ...] = field(compare=False, default=())  # name_aggr values

    @property
    def display(self) -> str:
        if not self.selector:
            return "all pods"
        return ",".join(f"{k}={v}" for k, v in self.selector)


def intersect_labels(label_sets: Iterable[Labels | None]) -> Labels | None:
    """Labels present with the same value in every logged set; None if none was logged."""
    result: dict[str, str] | None = None
    for labels in label_sets:
        if labels is None:
            continue
        current = dict(labels)
        result = current if result is None else {k: v for k, v in result.items() if current.get(k) == v}
    return None if result is None else tuple(sorted(result.items()))


def choose_selector(labels: Labels | None, label_keys: Sequence[str]) -> tuple[Labels, str]:
    """The workload selector for pods whose common labels are ``labels``.

    The first of ``label_keys`` the pods carry wins (authors write ``app: frontend``); without
    any of them, every stable common label is used; without labels, the empty selector.
    """
    if not labels:
        return (), "unlabelled"
    as_dict = dict(labels)
    for key in label_keys:
        if key in as_dict and is_stable_label(key):
            return ((key, as_dict[key]),), "label-keys"
    stable = tuple((k, v) for k, v in labels if is_stable_label(k))
    if not stable:
        return (), "unlabelled"
    return stable, "fallback"


def build_workloads(reports: Sequence[Report], label_keys: Sequence[str]) -> dict[tuple[str, str], Workload]:
    """Map each pod group ``(namespace, name_aggr)`` seen in ``reports`` to its workload."""
    seen: dict[tuple[str, str], list[Labels | None]] = defaultdict(list)
    for rep in reports:
        for ep in (rep.source, rep.dest):
            if ep.type == "wep" and ep.namespace is not None:
                seen[(ep.namespace, ep.name_aggr)].append(ep.labels)
    chosen: dict[tuple[str, str], tuple[Labels, str]] = {}
    for key, sets in seen.items():
        chosen[key] = choose_selector(intersect_labels(sets), label_keys)
    members: dict[tuple[str, Labels], list[str]] = defaultdict(list)
    hows: dict[tuple[str, Labels], set[str]] = defaultdict(set)
    for (ns, name), (sel, how) in chosen.items():
        members[(ns, sel)].append(name)
        hows[(ns, sel)].add(how)
    workloads: dict[tuple[str, Labels], Workload] = {}
    for (ns, sel), names in members.items():
        how_set = hows[(ns, sel)]
        how = "label-keys" if how_set == {"label-keys"} else sorted(how_set - {"label-keys"})[0]
        workloads[(ns, sel)] = Workload(ns, sel, how, tuple(sorted(names)))
    return {key: workloads[(key[0], sel)] for key, (sel, _) in chosen.items()}
