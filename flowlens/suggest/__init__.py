"""Least-privilege policy suggestions from observed traffic, proven by replay.

Owns ``flowlens suggest``'s library side: reading the observed edges of a window
(``queries/suggest-*.sql``) and how steadily each was seen (:mod:`.activity`), holding back what
looks like a scan or a probe (:mod:`.screen`), synthesising per-workload allow rules plus a default-deny and an
allow-DNS policy per namespace (:mod:`.synth`), rendering them as Kubernetes or Calico manifests
with evidence comments (:mod:`.render`), writing them safely (:func:`write_files`), the proof
(:mod:`.proof`): replaying the window's flows against the suggestion, and the rollout plan
(:mod:`.rollout`): staged first, then enforced namespace by namespace, with each step's effect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowlens.errors import UsageError
from flowlens.pause import collector_paused
from flowlens.schema import NAMESPACE_NAME, validate_namespace
from flowlens.suggest.activity import Activity, load_activity
from flowlens.suggest.model import FLAVORS, Plan, SuggestOptions, is_system_namespace, left_out_groups
from flowlens.suggest.observed import DEFAULT_LABEL_KEYS, Report, observed_span, reports_from_rows
from flowlens.suggest.render import Rendered, render
from flowlens.suggest.screen import CLASSES
from flowlens.suggest.synth import synthesise
from flowlens.suggest.yamlout import Document, dump_documents

if TYPE_CHECKING:
    from flowlens.engine import Engine
    from flowlens.policy.inventory import Inventory

__all__ = [
    "DEFAULT_LABEL_KEYS",
    "FLAVORS",
    "SuggestOptions",
    "Suggestion",
    "label_key_list",
    "load_activity",
    "load_reports",
    "namespaces_in_window",
    "suggest",
    "validate_namespace",
    "write_files",
]

CLUSTER_FILE = "_cluster.yaml"


def label_key_list(values: Sequence[str]) -> tuple[str, ...]:
    """The label keys that identify a workload, from ``--label-keys`` values (comma-separated or
    repeated); :data:`DEFAULT_LABEL_KEYS` when none are given."""
    if not values:
        return DEFAULT_LABEL_KEYS
    keys = tuple(k.strip() for v in values for k in v.split(",") if k.strip())
    if "pod-template-hash" in keys:
        raise UsageError("--label-keys: pod-template-hash changes with every rollout; it is never used")
    if not keys:
        raise UsageError("--label-keys: give at least one label key")
    return keys


def namespaces_in_window(engine: Engine, *, include_system: bool = False) -> list[str]:
    """Namespaces with pods in the window (system namespaces only with ``include_system``)."""
    table = engine.run("suggest-namespaces")
    names = [str(n) for n in table.column("namespace").to_pylist() if n and n != "-"]
    return sorted(
        n for n in names if NAMESPACE_NAME.match(n) and (include_system or not is_system_namespace(n))
    )


def load_reports(engine: Engine, namespaces: Sequence[str]) -> list[Report]:
    """Observed report groups touching ``namespaces`` in the engine's window."""
    table = engine.run("suggest-edges", {"namespaces": list(namespaces)})
    return reports_from_rows(table.to_pylist())


@dataclass(frozen=True)
class Suggestion:
    """The synthesised policies: the model, the rendered documents and their YAML text."""

    plan: Plan
    rendered: Rendered
    header: tuple[str, ...]

    def files(self) -> dict[str, str]:
        """File name -> YAML text, one file per namespace plus ``_cluster.yaml`` if needed."""
        out: dict[str, str] = {}
        if self.rendered.cluster:
            out[CLUSTER_FILE] = dump_documents(
                self.rendered.cluster,
                (*self.header, "cluster-scoped objects", *(f"note: {n}" for n in self.plan.notes)),
            )
        for ns, docs in self.rendered.namespaces:
            out[f"{ns}.yaml"] = dump_documents(docs, (*self.header, *self._ns_header(ns)))
        return out

    def stream(self) -> str:
        """Every document as one YAML stream (cluster-scoped first, then namespaces in order)."""
        files = self.files()
        return "".join(files[name] for name in sorted(files))

    def as_staged(self) -> Suggestion:
        """The same suggestion rendered as staged kinds (Calico evaluates them without enforcing)."""
        if self.plan.options.staged:
            return self
        options = dataclasses.replace(self.plan.options, staged=True)
        plan = dataclasses.replace(self.plan, options=options)
        flavor = f"flavor {options.flavor};"
        header = tuple(h.replace(flavor, f"flavor {options.flavor}, staged;", 1) for h in self.header)
        return Suggestion(plan, render(plan), header)

    def documents(self) -> list[Document]:
        return [*self.rendered.cluster, *(d for _, docs in self.rendered.namespaces for d in docs)]

    def _ns_header(self, namespace: str) -> list[str]:
        plan = next(p for p in self.plan.namespaces if p.namespace == namespace)
        lines = [f"namespace {namespace}"]
        lines.extend(f"note: {n}" for n in plan.notes)
        held = [g for g in plan.held_back if not g.admitted]
        if held:
            lines.append(
                f"held back ({len(held)} group{'s' if len(held) != 1 else ''}, "
                f"{sum(len(g.edges) for g in held)} edges, will be denied; keep one with --admit EDGE, "
                "all with --admit-held):"
            )
            for g in held:
                lines.append(f"  held back: {g.text}")
                lines.append(f"    admit: {g.token}")
        admitted = [g for g in plan.held_back if g.admitted]
        if admitted:
            lines.append(
                f"admitted on purpose ({len(admitted)} held-back groups kept by --admit or --admit-held):"
            )
            lines.extend(f"  admitted: {g.text}" for g in admitted)
        if plan.left_out:
            lines.append(f"left out ({len(plan.left_out)} edges, will be denied):")
            lines.extend(
                f"  {x.direction} {x.workload} {x.peer} {ports}: {x.connections} connections ({x.reason})"
                for x, ports in left_out_groups(plan.left_out)
            )
        return lines


@collector_paused()
def suggest(
    reports: Sequence[Report],
    options: SuggestOptions,
    inventory: Inventory | None = None,
    *,
    activity: Activity | None = None,
) -> Suggestion:
    """Synthesise and render the suggestion for ``options.namespaces`` from ``reports``.

    ``inventory``: service accounts for the Calico flavor, and the ports the pods declare for
    the screening; ``activity``: the intervals and days each edge was seen in
    (:func:`load_activity`, from the same engine and namespaces as the reports), estimated from
    the reports when None.
    """
    if options.flavor not in FLAVORS:
        raise UsageError(f"--flavor must be one of {', '.join(FLAVORS)}, not {options.flavor!r}")
    for ns in options.namespaces:
        validate_namespace(ns)
    if (
        min(options.min_connections, options.max_extra_addresses, options.min_days, options.thin_intervals)
        < 0
    ):
        raise UsageError(
            "--min-connections, --max-extra-addresses, --min-days and --thin-intervals must be 0 or more"
        )
    options.screen.check()
    if options.flavor == "calico" and not NAMESPACE_NAME.match(options.tier):
        raise UsageError(f"--tier {options.tier!r} is not a valid tier name (a DNS label)")
    if options.flavor == "calico" and options.tier == "default":
        raise UsageError(
            "--tier default: the default tier holds the Kubernetes policies (order 1000) and its end-of-tier "
            "deny applies to them too; give a tier of its own (the default is 'flowlens')"
        )
    plan = synthesise(reports, options, inventory, activity=activity)
    if options.baseline:
        uncovered = sorted(
            {
                ep.namespace
                for r in reports
                for ep in (r.source, r.dest)
                if ep.type == "wep"
                and ep.namespace
                and ep.namespace not in options.namespaces
                and not is_system_namespace(ep.namespace)
            }
        )
        if uncovered:
            note = (
                "the --baseline denies all but DNS in namespaces without suggested policies too: "
                + ", ".join(uncovered)
                + " (use --all-namespaces, or expect the proof to list their traffic)"
            )
            plan = dataclasses.replace(plan, notes=(*plan.notes, note))
    span = observed_span(reports)
    screening = plan.screening
    seen = screening.activity if screening is not None else None
    sc = options.screen
    header = [
        "generated by flowlens suggest: least-privilege policies from observed traffic",
        f"flavor {options.flavor}{', staged' if options.staged else ''}; {span}",
        f"label keys: {', '.join(options.label_keys)}; min connections {options.min_connections}; "
        f"max extra addresses {options.max_extra_addresses}; min days {options.min_days}",
    ]
    if seen is not None and reports:
        days = f"{seen.window_days} day{'s' if seen.window_days != 1 else ''}"
        header.append(
            f"stability: traffic on {days} in {seen.window_intervals} intervals of {seen.interval_seconds} s; "
            f"rules seen in fewer than {options.thin_intervals} intervals are marked THIN"
        )
    if sc.admit_all or not sc.classes:
        header.append(f"held back: nothing ({'--admit-held' if sc.admit_all else '--hold-back none'})")
    else:
        header.append(f"held back: {', '.join(c for c in CLASSES if c in sc.classes)}")
        header.append(
            f"  probes: at most {sc.probe_connections} connections of at most {sc.probe_bytes} bytes each; "
            f"scans: {sc.scan_ports}+ ports; sweeps: {sc.sweep_hosts}+ hosts; denied sources: "
            f"{round(100 * sc.denied_share)}%+ denied; one-offs: in at most {sc.one_off_intervals} interval{'s' if sc.one_off_intervals != 1 else ''}"
        )
    return Suggestion(plan, render(plan), tuple(header))


def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write ``files`` into ``out_dir`` (created if needed); no path may leave ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    written = []
    for name in sorted(files):
        if "/" in name or "\\" in name or name in ("", ".", "..") or name.startswith(".."):
            raise UsageError(f"refusing to write {name!r}: not a plain file name")
        if (root / name).is_symlink():
            raise UsageError(f"refusing to write {str(root / name)!r}: it is a symbolic link")
        target = (root / name).resolve()
        if target.parent != root:
            raise UsageError(f"refusing to write {name!r}: it would land outside {str(root)!r}")
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(files[name], encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written
