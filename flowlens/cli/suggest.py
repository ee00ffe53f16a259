"""CLI command ``flowlens suggest``: options, output files, the summary on stderr, exit codes.

Synthesis, rendering, the replay proof and safe file writing belong to :mod:`flowlens.suggest`.
stdout carries only YAML (when no ``--out`` is given); everything for people goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowlens.cli.common import (
    InventoryOpt,
    NamespacesOpt,
    OutFolderOpt,
    PoliciesOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    existing_store,
    window,
)
from flowlens.errors import CheckFailed, UsageError

if TYPE_CHECKING:
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
            int,
            typer.Option("--min-connections", min=0, help="Leave out edges with fewer connections (listed)."),
        ] = 1,
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
        store: StoreOpt = None,
    ) -> None:
        """Suggest least-privilege policies from the traffic observed in the window, and prove them.

        For each namespace: an allow-DNS policy (first), a default-deny for ingress and egress, and
        one policy per workload allowing exactly the observed peers and ports, each rule with its
        evidence in a comment. The suggestion is then replayed against every recorded flow of the
        window: if an observed allowed connection would be denied, the command lists it and exits 10.

        The policies go to stdout, or with --out one file per namespace into that folder.
        --policies are the policies in force, which the proof keeps beside the suggestion (or
        replaces, with --replace); --inventory gives service accounts and named ports for the
        rules and the proof.
        """
        from flowlens.engine import connect
        from flowlens.policy.inventory import load_inventory

        # Loaded here, not at import time: `flowlens --help` and the other commands stay quick.
        from flowlens.suggest import (
            FLAVORS,
            SuggestOptions,
            label_key_list,
            load_reports,
            namespaces_in_window,
            suggest,
            validate_namespace,
            write_files,
        )
        from flowlens.suggest.proof import prove
        from flowlens.suggest.summary import build_summary, format_summary, window_text

        if flavor not in FLAVORS:
            raise UsageError(f"--flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
        if namespace and all_namespaces:
            raise UsageError("give --namespace or --all-namespaces, not both")
        if not namespace and not all_namespaces:
            raise UsageError("say which namespaces: --namespace NAME (repeatable) or --all-namespaces")
        if check is not None and out is not None:
            raise UsageError("--check only runs the proof; it writes no policies, so --out does not apply")
        root = existing_store(store).root
        keys = label_key_list(label_keys or ())
        since_at, until_at = window(since, until)
        with connect(root, since=since_at, until=until_at) as engine:
            if all_namespaces:
                targets = namespaces_in_window(engine, include_system=include_system)
                if not targets:
                    raise UsageError("no namespace has pods in the window; widen --since/--until")
            else:
                targets = sorted({validate_namespace(n) for n in namespace or []})
            reports = load_reports(engine, targets)
            span = window_text(engine.since, engine.until)
        options = SuggestOptions(
            namespaces=tuple(targets),
            flavor=flavor,
            label_keys=keys,
            tier=tier,
            staged=staged,
            baseline=baseline,
            min_connections=min_connections,
            include_denied=include_denied,
            max_extra_addresses=max_extra_addresses,
        )
        if not reports:
            typer.echo(f"flowlens: no flows touch {', '.join(targets)} in the window", err=True)
        inv = load_inventory(list(inventory)) if inventory else None
        suggestion = None if check is not None else suggest(reports, options, inv)
        result = prove(
            reports,
            options,
            suggestion=suggestion,
            check_paths=[check] if check is not None else None,
            policies=list(policies or []),
            inventory=inv,
            replace=replace,
        )
        summary: Summary = build_summary(options, suggestion, result, span)
        if suggestion is not None:
            files = suggestion.files()
            if out is not None:
                for path in write_files(files, out):
                    typer.echo(f"wrote {path}", err=True)
            else:
                typer.echo(suggestion.stream(), nl=False)
        typer.echo(format_summary(summary), err=True)
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
