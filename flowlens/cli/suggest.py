"""CLI command ``flowlens suggest``: options, output files, the summary on stderr, exit codes.

Synthesis, rendering, the replay proof and safe file writing belong to :mod:`flowlens.suggest`.
stdout carries only YAML (when no ``--out`` is given); everything for people goes to stderr.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowlens.cli.common import (
    CalicoVersionOpt,
    ClusterGuardrailsOpt,
    EngineOpt,
    InventoryOpt,
    NamespacesOpt,
    OutFolderOpt,
    PoliciesOpt,
    SinceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    UntilOpt,
    config,
    engine_choice,
    existing_store,
    window,
)
from flowlens.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flowlens.suggest import Suggestion, SuggestOptions
    from flowlens.suggest.summary import Summary


def register(app: typer.Typer) -> None:
    """Add ``flowlens suggest`` to ``app``."""

    @app.command("suggest")
    def suggest_cmd(
        namespace: NamespacesOpt = None,
        all_namespaces: Annotated[
            bool,
            typer.Option(
                "--all-namespaces",
                "-A",
                help="Every namespace with pods in the window, except kube-system, kube-public, "
                "kube-node-lease, calico-system, calico-apiserver and tigera-* (see --include-system).",
            ),
        ] = False,
        include_system: Annotated[
            bool, typer.Option("--include-system", help="With --all-namespaces: system namespaces too.")
        ] = False,
        since: SinceOpt = None,
        until: UntilOpt = None,
        flavor: Annotated[
            str,
            typer.Option(
                "--flavor",
                help="kubernetes: networking.k8s.io/v1 NetworkPolicy; calico: projectcalico.org/v3 "
                "NetworkPolicy in a tier, GlobalNetworkSets for address groups.",
            ),
        ] = "kubernetes",
        label_keys: Annotated[
            list[str] | None,
            typer.Option(
                "--label-keys",
                help="Label keys that identify a workload, first match wins (comma-separated or "
                "repeated). Default: app, app.kubernetes.io/name, k8s-app.",
            ),
        ] = None,
        tier: Annotated[
            str, typer.Option("--tier", help="Calico flavor: the tier of the policies.")
        ] = "flowlens",
        staged: Annotated[
            bool,
            typer.Option("--staged", help="Emit Staged* kinds: Calico evaluates them without enforcing."),
        ] = False,
        baseline: Annotated[
            bool,
            typer.Option(
                "--baseline",
                help="Also emit a GlobalNetworkPolicy cluster baseline: default deny for every "
                "non-system namespace, DNS allowed.",
            ),
        ] = False,
        min_connections: Annotated[
            int | None,
            typer.Option(
                "--min-connections", min=0, help="Leave out edges with fewer connections (listed). Default 1."
            ),
        ] = None,
        include_denied: Annotated[
            bool,
            typer.Option(
                "--include-denied", help="Turn observed denied flows into allow rules marked as remediation."
            ),
        ] = False,
        max_extra_addresses: Annotated[
            int,
            typer.Option(
                "--max-extra-addresses",
                min=0,
                help="Per rule, how many unobserved addresses CIDR aggregation may admit (0: exact).",
            ),
        ] = 0,
        min_days: Annotated[
            int | None,
            typer.Option(
                "--min-days", min=0, help="Leave out edges seen on fewer distinct days (listed). Default 0."
            ),
        ] = None,
        thin_intervals: Annotated[
            int | None,
            typer.Option(
                "--thin-intervals",
                min=0,
                help="Mark rules whose weakest evidence was seen in fewer intervals THIN. Default 6.",
            ),
        ] = None,
        hold_back: Annotated[
            str | None,
            typer.Option(
                "--hold-back",
                help="Which suspicious shapes are held back, comma-separated: port-scan, host-sweep, "
                "no-listener, denied-source, one-off; 'all' (the default) or 'none'.",
            ),
        ] = None,
        admit: Annotated[
            list[str] | None,
            typer.Option(
                "--admit",
                help="Keep held-back edges on purpose: SOURCE->DEST[@PORTS], e.g. "
                "'staging/app=frontend->staging/app=backend@tcp/8081-8285' (repeatable; the held-back "
                "list prints each group's EDGE).",
            ),
        ] = None,
        admit_held: Annotated[
            bool, typer.Option("--admit-held", help="Keep every held-back edge (they are still listed).")
        ] = False,
        probe_bytes: Annotated[
            int | None,
            typer.Option(
                "--probe-bytes",
                min=0,
                help="A probe's connections carry at most this many bytes each. Default 300.",
            ),
        ] = None,
        probe_connections: Annotated[
            int | None,
            typer.Option(
                "--probe-connections", min=0, help="A probe is at most this many connections. Default 2."
            ),
        ] = None,
        scan_ports: Annotated[
            int | None,
            typer.Option(
                "--scan-ports",
                min=0,
                help="A port scan reaches at least this many ports of one destination, each once or "
                "tiny. Default 10; 0 turns it off.",
            ),
        ] = None,
        sweep_hosts: Annotated[
            int | None,
            typer.Option(
                "--sweep-hosts",
                min=0,
                help="A host sweep reaches at least this many destinations on one port with tiny "
                "connections. Default 10; 0 turns it off.",
            ),
        ] = None,
        denied_share: Annotated[
            float | None,
            typer.Option(
                "--denied-share",
                min=0.0,
                max=1.0,
                help="Hold back probes of sources whose connections were at least this share denied. "
                "Default 0.5; 0 turns it off.",
            ),
        ] = None,
        one_off_intervals: Annotated[
            int | None,
            typer.Option(
                "--one-off-intervals",
                min=0,
                help="Hold back probes seen in at most this many intervals. Default 1; 0 turns it off.",
            ),
        ] = None,
        plan: Annotated[
            bool,
            typer.Option(
                "--plan",
                help="Also write the rollout: staged policies first (DIR/staged/ with --out), what their "
                "pending verdicts will show, then enforcement namespace by namespace, each step with its "
                "replayed effect (DIR/rollout.md with --out, else stderr).",
            ),
        ] = False,
        inventory: InventoryOpt = None,
        policies: PoliciesOpt = None,
        replace: Annotated[
            bool,
            typer.Option(
                "--replace",
                help="Prove the suggestion in place of the policies in force in its namespaces "
                "(default: beside them).",
            ),
        ] = False,
        check: Annotated[
            Path | None,
            typer.Option("--check", help="Only run the proof on an existing policy folder; write nothing."),
        ] = None,
        out: OutFolderOpt = None,
        summary_json: Annotated[
            Path | None, typer.Option("--summary-json", help="Also write the summary as JSON to this file.")
        ] = None,
        validate: Annotated[
            bool,
            typer.Option(
                "--validate",
                help="Also check every emitted object against the Kubernetes OpenAPI schema "
                "(kubernetes-validate) and the projectcalico.org/v3 schema (jsonschema); exit 10 on a problem.",
            ),
        ] = False,
        cluster: ClusterGuardrailsOpt = False,
        admin_tier: Annotated[
            str | None,
            typer.Option(
                "--admin-tier",
                help="--cluster --flavor calico: tier of the Admin layer (default: Calico's own).",
            ),
        ] = None,
        baseline_tier: Annotated[
            str | None,
            typer.Option(
                "--baseline-tier",
                help="--cluster --flavor calico: tier of the Baseline layer (default: Calico's own).",
            ),
        ] = None,
        calico_version: CalicoVersionOpt = None,
        store: StoreOpt = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Suggest least-privilege policies from the traffic observed in the window, and prove them.

        For each namespace: an allow-DNS policy (first), a default-deny for ingress and egress, and
        one policy per workload allowing exactly the observed peers and ports, each rule with its
        evidence in a comment (connections, bytes, on how many days and intervals it was seen).

        Traffic that looks like reconnaissance (port scans, host sweeps, probes of ports nothing
        listens on, probes from mostly-denied sources, one-off probes) is held back: left out of
        the policies and listed with its evidence and why; --admit EDGE or --admit-held keeps it.

        The suggestion is then replayed against every recorded flow of the window: if an observed
        allowed connection would be denied, the command lists it and exits 10. Held-back and
        left-out edges are listed as "would be denied" and do not change the exit code. Defaults
        of these options can be set in the suggest: section of flowlens.yaml.

        The policies go to stdout, or with --out one file per namespace into that folder.
        --policies are the policies in force, which the proof keeps beside the suggestion (or
        replaces, with --replace); --inventory gives service accounts and named ports for the
        rules and the proof.

        With --cluster: the cluster guardrails instead (ClusterNetworkPolicy, or Calico
        GlobalNetworkPolicy in tiers with --flavor calico) for every namespace of the window.
        """
        if cluster:
            from flowlens.cli.suggest_cluster import ClusterArgs, run
            from flowlens.suggest import label_key_list

            if namespace or all_namespaces or check is not None:
                raise UsageError(
                    "--cluster covers every namespace: leave out --namespace, --all-namespaces and --check"
                )
            since_at, until_at = window(since, until)
            run(
                ClusterArgs(
                    root=existing_store(store).root,
                    since=since_at,
                    until=until_at,
                    flavor=flavor,
                    label_keys=label_key_list(label_keys or ()),
                    admin_tier=admin_tier,
                    baseline_tier=baseline_tier,
                    include_system=include_system,
                    calico_version=calico_version,
                    policies=tuple(policies or ()),
                    inventory=tuple(inventory or ()),
                    out=out,
                    summary_json=summary_json,
                    validate=validate,
                )
            )
            return
        from flowlens.engine import open_engine
        from flowlens.policy.inventory import load_inventory

        # Loaded here, not at import time: `flowlens --help` and the other commands stay quick.
        from flowlens.suggest import (
            FLAVORS,
            label_key_list,
            load_activity,
            load_reports,
            namespaces_in_window,
            suggest,
            validate_namespace,
        )
        from flowlens.suggest.proof import prove
        from flowlens.suggest.screen import screen
        from flowlens.suggest.summary import build_summary, format_summary, window_text

        if flavor not in FLAVORS:
            raise UsageError(f"--flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
        if namespace and all_namespaces:
            raise UsageError("give --namespace or --all-namespaces, not both")
        if not namespace and not all_namespaces:
            raise UsageError("say which namespaces: --namespace NAME (repeatable) or --all-namespaces")
        if check is not None and out is not None:
            raise UsageError("--check only runs the proof; it writes no policies, so --out does not apply")
        if plan and check is not None:
            raise UsageError(
                "--plan plans the rollout of a suggestion; --check has none (leave out one of them)"
            )
        if plan and staged:
            raise UsageError(
                "--plan writes the staged policies itself (into DIR/staged/ with --out); leave out --staged"
            )
        choice = engine_choice(engine, spark_master, spark_conf)
        root = existing_store(store, choice)
        keys = label_key_list(label_keys or ())
        given = {
            "min_connections": min_connections,
            "min_days": min_days,
            "thin_intervals": thin_intervals,
            "probe_bytes": probe_bytes,
            "probe_connections": probe_connections,
            "scan_ports": scan_ports,
            "sweep_hosts": sweep_hosts,
            "denied_share": denied_share,
            "one_off_intervals": one_off_intervals,
            "classes": _classes(hold_back),
            "admit": tuple(admit) if admit else None,
        }
        options = _options(given, admit_held)
        since_at, until_at = window(since, until)
        with open_engine(root, choice, since=since_at, until=until_at) as opened:
            if all_namespaces:
                targets = namespaces_in_window(opened, include_system=include_system)
                if not targets:
                    raise UsageError("no namespace has pods in the window; widen --since/--until")
            else:
                targets = sorted({validate_namespace(n) for n in namespace or []})
            reports = load_reports(opened, targets)
            activity = load_activity(opened, reports, targets, keys)
            span = window_text(opened.since, opened.until)
        options = dataclasses.replace(
            options,
            namespaces=tuple(targets),
            flavor=flavor,
            label_keys=keys,
            tier=tier,
            staged=staged,
            baseline=baseline,
            include_denied=include_denied,
            max_extra_addresses=max_extra_addresses,
        )
        touched = {ep.namespace for rep in reports for ep in (rep.source, rep.dest)}
        quiet = [ns for ns in targets if ns not in touched]
        if quiet and check is None:
            # A default deny written from no evidence would cut off whatever runs there.
            raise UsageError(
                f"no flows touch {', '.join(quiet)} in the window ({span}): nothing to suggest from, "
                "and a default deny suggested without observed traffic would cut off whatever runs "
                "there; widen --since/--until, check the namespace's name, or leave it out"
            )
        if not reports:
            typer.echo(f"flowlens: no flows touch {', '.join(targets)} in the window", err=True)
        inv = load_inventory(list(inventory)) if inventory else None
        suggestion = None if check is not None else suggest(reports, options, inv, activity=activity)
        screening = (
            suggestion.plan.screening
            if suggestion is not None
            else screen(
                reports, keys, options.screen, activity=activity, inventory=inv, include_denied=include_denied
            )
        )
        result = prove(
            reports,
            options,
            suggestion=suggestion,
            check_paths=[check] if check is not None else None,
            policies=list(policies or []),
            inventory=inv,
            replace=replace,
            screening=screening,
        )
        rollout = None
        if plan and suggestion is not None:
            from flowlens.suggest.rollout import format_rollout, plan_rollout

            rollout = plan_rollout(
                reports,
                options,
                suggestion,
                result,
                policies=list(policies or []),
                inventory=inv,
                replace=replace,
                staged_dir=f"{out}/staged/" if out is not None else "<staged>/",
                enforce_dir=f"{out}/" if out is not None else "<enforce>/",
                progress=lambda message: typer.echo(f"flowlens: {message}", err=True),
            )
        summary: Summary = build_summary(
            options, suggestion, result, span, screening=screening, rollout=rollout
        )
        if suggestion is not None:
            _write_suggestion(suggestion, out, plan)
        typer.echo(format_summary(summary), err=True)
        if rollout is not None:
            text = format_rollout(rollout)
            if out is not None:
                from flowlens.suggest import write_files

                for path in write_files({"rollout.md": text + "\n"}, out):
                    typer.echo(f"wrote {path}", err=True)
            else:
                typer.echo(text, err=True)
        problems: list[str] = []
        if validate and suggestion is not None:
            from flowlens.suggest.validate import available, validate_objects
            from flowlens.suggest.yamlout import plain

            if not available():
                raise UsageError(
                    "--validate needs the kubernetes-validate and jsonschema packages; install them"
                )
            problems = validate_objects([plain(d.body) for d in suggestion.documents()])
            for problem in problems:
                typer.echo(f"schema: {problem}", err=True)
            if not problems:
                typer.echo("schema: every emitted object is valid", err=True)
        if summary_json is not None:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_text(
                json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        if problems:
            raise CheckFailed(
                f"{len(problems)} emitted object(s) fail their schema (listed above); please report it"
            )
        if result.broken:
            raise CheckFailed(
                f"{len(result.broken)} observed allowed connection(s) would be denied by "
                + ("the policies in " + str(check) if check is not None else "the suggestion")
                + " (listed above); "
                + ("fix the policies" if check is not None else "nothing was proven safe: do not apply it")
            )


def _classes(text: str | None) -> tuple[str, ...] | None:
    """``--hold-back``: None when not given, else the chosen classes (``all``, ``none``, a list)."""
    from flowlens.suggest.screen import CLASSES

    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["all"]:
        return CLASSES
    if items == ["none"]:
        return ()
    return tuple(items)


def _options(given: dict[str, Any], admit_held: bool) -> SuggestOptions:
    """Options from the command line, else flowlens.yaml's suggest: section, else the defaults."""
    from flowlens.suggest import SuggestOptions
    from flowlens.suggest.screen import ScreenOptions
    from flowlens.suggest.settings import suggest_settings

    cfg = config()
    values = suggest_settings(cfg.suggest, str(cfg.path)) if cfg.suggest else {}
    values.update({k: v for k, v in given.items() if v is not None})
    screen_fields = {f.name for f in dataclasses.fields(ScreenOptions)}
    screen_options = ScreenOptions(
        **{k: v for k, v in values.items() if k in screen_fields}, admit_all=admit_held
    )
    rest = {k: v for k, v in values.items() if k not in screen_fields}
    return SuggestOptions(namespaces=(), screen=screen_options, **rest)


def _write_suggestion(suggestion: Suggestion, out: Path | None, plan: bool) -> None:
    """The YAML to stdout, or one file per namespace into ``out`` (and ``out/staged/`` with --plan)."""
    from flowlens.suggest import write_files

    if out is None:
        typer.echo(suggestion.stream(), nl=False)
        return
    for path in write_files(suggestion.files(), out):
        typer.echo(f"wrote {path}", err=True)
    if plan:
        for path in write_files(suggestion.as_staged().files(), out / "staged"):
            typer.echo(f"wrote {path}", err=True)
