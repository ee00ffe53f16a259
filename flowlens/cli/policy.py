"""CLI commands ``flowlens simulate`` and ``flowlens explain``: options, printing and exit codes.

The work is in :mod:`flowlens.policy`: loading, evaluation and replay, finding the endpoints of
``--from/--to`` (:mod:`flowlens.policy.lookup`) and rendering (:mod:`flowlens.policy.render`).
Results go to stdout (or ``--out``); notes for people go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowlens.cli.common import (
    BaseOpt,
    CalicoVersionOpt,
    EngineOpt,
    ExplanationFormat,
    ExplanationFormatOpt,
    InventoryOpt,
    NamespaceOpt,
    OutFileOpt,
    PoliciesOpt,
    SimulationFormat,
    SimulationFormatOpt,
    SinceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    UntilOpt,
    calico_version,
    engine_choice,
    err,
    existing_store,
    required_policies,
    resolve_store,
    window,
)
from flowlens.errors import CheckFailed, UsageError
from flowlens.output import TERMINAL_ROWS, Written, replacing
from flowlens.output.text import safe_text

if TYPE_CHECKING:
    from flowlens.policy.render import Write

MAX_NOTES = 20


class FailOn(StrEnum):
    newly_denied = "newly-denied"
    newly_allowed = "newly-allowed"
    any = "any"


SIMULATE_HELP = """\
Replay the recorded flows against a candidate policy set and show which connections it would
newly deny, newly allow, or leave unchanged, with the Calico trace that decides each one.

Each distinct flow key (reporter, source, destination, protocol, port) is evaluated once: records
reported by the source are checked against the source's egress policy, records reported by the
destination against the destination's ingress policy, exactly as Calico would (tiers, order,
Pass, end-of-tier deny, profiles, Kubernetes policies at order 1000 in the default tier).

--policies (required) takes files or folders of Kubernetes and Calico manifests (YAML, JSON,
Lists). With --base, the candidate is applied on top of the policies in force (same kind,
namespace and name replaced); without it, --policies is the whole policy set.

Without --inventory, facts the flow logs do not carry (namespace labels other than the name,
service accounts, named ports, masked IPs) cannot be decided. Such rules take the stricter
outcome, unless the recorded verdict is one of the possible outcomes: then it is kept and the
row is marked 'undecided'. Either way the notes say which rule and which fact (stderr, and the
'notes' of each json/jsonl row).

Cluster guardrails (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) are
evaluated in their tiers as the Calico version enforces them: --calico-version 3.31 for the
admin network policies of Calico v3.29-v3.31, 3.32 for ClusterNetworkPolicy; without it the
manifests, then the hits in the store, tell, else 3.32.

Output is written as it is rendered, a thousand rows at a time. On a terminal the table shows
the first 100 change and workload pairs and the totals, and stderr says how many were left out;
piped, or with --format jsonl|json|markdown or --out FILE, everything is written.

--fail-on newly-denied|newly-allowed|any exits with code 10 when such changes exist (CI gate).

With --engine spark, more than 100,000 distinct flow keys are evaluated on Spark's executors
rather than on the driver (the same output); --spark-conf spark.flowlens.simulate.driverKeys=N
moves the threshold (0: always on the executors).
"""

EXPLAIN_HELP = """\
Explain, tier by tier, how the policies decide one connection: the egress walk at the source
and the ingress walk at the destination, in plain words, and the overall verdict.

--policies (required) and --base take files or folders of manifests, as for simulate.
--from/--to take NAMESPACE/WORKLOAD or an IP address. WORKLOAD is a pod name, an aggregated
name ('frontend-7d4f8c9b5-*'), a name prefix ('frontend') or an app label value, looked up in
the --inventory, else in the flows of the store. --port is 5432 or 5432/tcp (default tcp).
Every tier of the order is walked, Calico's cluster guardrail tiers included (--calico-version
picks them, as for simulate).
"""


def _emit(write: Callable[[Write, bool], Written], fmt: str, out: Path | None, *, cut_hint: str = "") -> None:
    """Output written by ``write`` (in pieces) to stdout or ``out``, with control characters from
    flow logs and manifests made visible (JSON keeps its values; see flowlens.output.text.safe_text).

    On a terminal the table format is cut after TERMINAL_ROWS groups; ``cut_hint`` then tells, on
    stderr, how to see them all."""
    if out is None:
        terminal = sys.stdout.isatty()
        written = write(lambda piece: typer.echo(safe_text(piece, fmt), nl=False), terminal)
        if written.cut:
            err(f"… {written.cut:,} more rows (of {written.rows:,}): {cut_hint}")
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc})") from None
    with replacing(out) as sink:
        write(lambda piece: sink.write(safe_text(piece, fmt).encode("utf-8")), False)
    typer.echo(f"flowlens: wrote {out}", err=True)


def _notes(notes: Sequence[str]) -> None:
    distinct = sorted(set(notes))
    for note in distinct[:MAX_NOTES]:
        err(f"flowlens: note: {note}")
    if len(distinct) > MAX_NOTES:
        typer.echo(
            f"flowlens: note: ... and {len(distinct) - MAX_NOTES} more (see the json output)", err=True
        )


# --------------------------------------------------------------------------------------------
# explain options


def _parse_port(text: str) -> tuple[int, str]:
    number, _, proto = text.partition("/")
    if not number.strip().isdigit():
        raise UsageError(f"--port {text!r}: give a port number, optionally with a protocol: 5432 or 5432/tcp")
    port = int(number)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {text!r}: the port must be from 0 to 65535")
    return port, (proto.strip().lower() or "tcp")


# --------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``explain`` to ``app``."""

    @app.command("simulate", help=SIMULATE_HELP)
    def simulate_cmd(
        policies: PoliciesOpt = None,
        base: BaseOpt = None,
        inventory: InventoryOpt = None,
        namespace: NamespaceOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        store: StoreOpt = None,
        fmt: SimulationFormatOpt = SimulationFormat.table,
        fail_on: Annotated[
            FailOn | None,
            typer.Option(
                "--fail-on", help="Exit 10 when there are newly-denied, newly-allowed or any changes."
            ),
        ] = None,
        out: OutFileOpt = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
        version_text: CalicoVersionOpt = None,
    ) -> None:
        from flowlens.engine import open_engine
        from flowlens.policy import load_candidate, load_inventory
        from flowlens.policy.render import write_simulation
        from flowlens.policy.simulate import simulate

        candidate = required_policies(policies)
        choice = engine_choice(engine, spark_master, spark_conf)
        flows = existing_store(store, choice)
        since_at, until_at = window(since, until)
        policy_set = load_candidate(candidate, base or [])
        inv = load_inventory(list(inventory)) if inventory else None
        with open_engine(flows, choice, since=since_at, until=until_at) as opened:
            version = calico_version(version_text, policy_set, opened)
            result = simulate(opened, policy_set, inv, namespace=namespace, calico_version=version)
        cut = TERMINAL_ROWS if fmt is SimulationFormat.table else None
        _emit(
            lambda write, terminal: write_simulation(
                result, fmt.value, write, max_rows=cut if terminal else None
            ),
            fmt.value,
            out,
            cut_hint="use --format jsonl, --format markdown or --out FILE to see them all",
        )
        if result.executor_keys:
            typer.echo(
                f"flowlens: simulate: {result.executor_keys:,} flow keys evaluated on the Spark executors",
                err=True,
            )
        row_notes = [n for r in result.rows for n in r.notes]
        _notes(list(result.notes) + row_notes)
        t = result.totals
        typer.echo(
            f"flowlens: simulate: {t['newly-denied']['keys']:,} newly denied, {t['newly-allowed']['keys']:,} "
            f"newly allowed, {t['unchanged']['keys']:,} unchanged flow keys "
            f"({result.records():,} records)",
            err=True,
        )
        if fail_on is not None:
            changes = ("newly-denied", "newly-allowed") if fail_on is FailOn.any else (fail_on.value,)
            found = {c: t[c]["keys"] for c in changes if t[c]["keys"]}
            if found:
                what = ", ".join(f"{n} {c}" for c, n in found.items())
                raise CheckFailed(f"--fail-on {fail_on.value}: {what} flow keys; see the output for which")

    @app.command("explain", help=EXPLAIN_HELP)
    def explain_cmd(
        source: Annotated[str, typer.Option("--from", help="NAMESPACE/WORKLOAD or IP.")],
        dest: Annotated[str, typer.Option("--to", help="NAMESPACE/WORKLOAD or IP.")],
        port: Annotated[str, typer.Option("--port", help="Destination port, e.g. 5432 or 53/udp.")],
        policies: PoliciesOpt = None,
        inventory: InventoryOpt = None,
        base: BaseOpt = None,
        store: StoreOpt = None,
        fmt: ExplanationFormatOpt = ExplanationFormat.text,
        out: OutFileOpt = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
        version_text: CalicoVersionOpt = None,
    ) -> None:
        from flowlens.engine import connect, open_engine
        from flowlens.policy import Evaluator, load_candidate, load_inventory
        from flowlens.policy.lookup import lookup_endpoint
        from flowlens.policy.render import write_explanation

        port_number, proto = _parse_port(port)
        policy_set = load_candidate(required_policies(policies), base or [])
        inv = load_inventory(list(inventory)) if inventory else None
        choice = engine_choice(engine, spark_master, spark_conf)
        flows = resolve_store(store, choice)
        if version_text or not flows.flow_files():
            version = calico_version(version_text, policy_set, None)
        else:  # DuckDB only when the store has hits to tell the version by (Spark for a Hadoop URL)
            with connect(flows) if not flows.files.remote else open_engine(flows, choice) as hits:
                version = calico_version(None, policy_set, hits)
        evaluator = Evaluator(policy_set, inv, calico_version=version)
        src = lookup_endpoint(source, evaluator, flows, name="--from", engine=choice)
        dst = lookup_endpoint(dest, evaluator, flows, name="--to", engine=choice)
        expl = evaluator.explain(src, dst, proto, port_number)
        _emit(lambda write, _terminal: write_explanation(expl, fmt.value, write), fmt.value, out)
        _notes(policy_set.notes)
