"""CLI commands ``flowlens simulate`` and ``flowlens explain``: options, rendering and exit codes.

The work is in :mod:`flowlens.policy` (loading, evaluation, replay). Results go to stdout (or
``--out``); notes for people go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from flowlens.cli.common import StoreOpt, resolve_store
from flowlens.errors import CheckFailed, PolicyError, StoreError, UsageError
from flowlens.store import Store

MAX_NOTES = 20


class SimFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


class FailOn(StrEnum):
    newly_denied = "newly-denied"
    newly_allowed = "newly-allowed"
    any = "any"


class ExplainFormat(StrEnum):
    text = "text"
    json = "json"


SIMULATE_HELP = """\
Replay the recorded flows against a candidate policy set and show which connections it would
newly deny, newly allow, or leave unchanged, with the Calico trace that decides each one.

Each distinct flow key (reporter, source, destination, protocol, port) is evaluated once: records
reported by the source are checked against the source's egress policy, records reported by the
destination against the destination's ingress policy, exactly as Calico would (tiers, order,
Pass, end-of-tier deny, profiles, Kubernetes policies at order 1000 in the default tier).

--policies takes files or folders of Kubernetes and Calico manifests (YAML, JSON, Lists). With
--base, the candidate is applied on top of the policies in force (same kind, namespace and name
replaced); without it, --policies is the whole policy set.

Without --inventory, facts the flow logs do not carry (namespace labels other than the name,
service accounts, named ports, masked IPs) cannot be decided. Such rules take the stricter
outcome, unless the recorded verdict is one of the possible outcomes: then it is kept and the
row is marked 'undecided'. Either way the notes say which rule and which fact (stderr, and the
'notes' of each json/jsonl row).

--fail-on newly-denied|newly-allowed|any exits with code 10 when such changes exist (CI gate).
"""

EXPLAIN_HELP = """\
Explain, tier by tier, how the policies decide one connection: the egress walk at the source
and the ingress walk at the destination, in plain words, and the overall verdict.

--from/--to take NAMESPACE/WORKLOAD or an IP address. WORKLOAD is a pod name, an aggregated
name ('frontend-7d4f8c9b5-*'), a name prefix ('frontend') or an app label value, looked up in
the --inventory, else in the flows of the store. --port is 5432 or 5432/tcp (default tcp).
"""


def _store_root(store: Path | None) -> Path:
    return resolve_store(store).root


def _load(policies: Sequence[Path], base: Sequence[Path], inventory: Sequence[Path]) -> tuple[Any, Any]:
    from flowlens.policy import load_inventory, load_policies

    if not policies:
        raise UsageError("--policies is required: give a manifest file or a folder of manifests")
    candidate = load_policies(list(policies))
    policy_set = load_policies(list(base)).merged(candidate) if base else candidate
    inv = load_inventory(list(inventory)) if inventory else None
    return policy_set, inv


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc})") from None
    typer.echo(f"flowlens: wrote {out}", err=True)


def _notes(notes: Sequence[str]) -> None:
    distinct = sorted(set(notes))
    for note in distinct[:MAX_NOTES]:
        typer.echo(f"flowlens: note: {note}", err=True)
    if len(distinct) > MAX_NOTES:
        typer.echo(
            f"flowlens: note: ... and {len(distinct) - MAX_NOTES} more (see the json output)", err=True
        )


# --------------------------------------------------------------------------------------------
# simulate rendering


def _last_hit(trace: Sequence[str]) -> str:
    if not trace:
        return "-"
    # "N|tier|name|action|rule" without the index: the deciding policy and rule.
    return trace[-1].split("|", 1)[1]


def _groups(result: Any) -> list[dict[str, Any]]:
    """Rows grouped by change and workload pair, in the result's order."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in result.rows:
        key = (row.change, row.source, row.dest)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "change": row.change,
                "source": row.source,
                "dest": row.dest,
                "ports": set(),
                "keys": 0,
                "records": 0,
                "num_flows": 0,
                "bytes": 0,
                "decided_by": {},
            }
        port = "-" if row.dest_port is None else str(row.dest_port)
        g["ports"].add(f"{row.proto or '?'}/{port}")
        g["keys"] += 1
        g["records"] += row.records
        g["num_flows"] += row.num_flows
        g["bytes"] += row.bytes
        hit = f"{row.reporter}: {_last_hit(row.simulated_trace)}"
        g["decided_by"][hit] = g["decided_by"].get(hit, 0) + row.records
    out = []
    for g in groups.values():
        ports = sorted(
            g["ports"],
            key=lambda p: (p.split("/")[0], int(p.split("/")[1]) if p.split("/")[1].isdigit() else -1),
        )
        decided = sorted(g["decided_by"].items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            {
                **g,
                "ports": ", ".join(ports),
                "decided_by": "; ".join(k for k, _ in decided),
            }
        )
    return out


_COLUMNS = ("change", "source", "dest", "ports", "keys", "records", "num_flows", "bytes", "decided_by")
_HEADERS = (
    "CHANGE",
    "SOURCE",
    "DEST",
    "PORTS",
    "KEYS",
    "RECORDS",
    "FLOWS",
    "BYTES",
    "DECIDED BY (simulated)",
)


def _totals_lines(result: Any) -> list[str]:
    lines = []
    for change, t in result.totals.items():
        lines.append(
            f"{change}: {t['keys']:,} keys, {t['records']:,} records, {t['num_flows']:,} flows, {t['bytes']:,} bytes"
        )
    return lines


def render_table(result: Any) -> str:
    groups = _groups(result)
    cells = [list(_HEADERS)] + [[_fmt(g[c]) for c in _COLUMNS] for g in groups]
    widths = [max(len(r[i]) for r in cells) for i in range(len(_HEADERS))]
    numeric = {4, 5, 6, 7}
    lines = []
    for r in cells:
        parts = [r[i].rjust(widths[i]) if i in numeric else r[i].ljust(widths[i]) for i in range(len(r))]
        lines.append("  ".join(parts).rstrip())
    if not groups:
        lines.append("(no flows in the store for this window)")
    lines.append("")
    lines.extend(_totals_lines(result))
    return "\n".join(lines) + "\n"


def render_markdown(result: Any) -> str:
    groups = _groups(result)
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---:" if i in (4, 5, 6, 7) else "---" for i in range(len(_HEADERS))) + "|",
    ]
    for g in groups:
        lines.append("| " + " | ".join(_fmt(g[c]).replace("|", "\\|") for c in _COLUMNS) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in _totals_lines(result))
    return "\n".join(lines) + "\n"


def render_json(result: Any) -> str:
    doc = {
        "totals": result.totals,
        "notes": sorted(set(result.notes)),
        "rows": [r.as_dict() for r in result.rows],
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def render_jsonl(result: Any) -> str:
    return "".join(json.dumps(r.as_dict(), sort_keys=False) + "\n" for r in result.rows)


def _fmt(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --------------------------------------------------------------------------------------------
# explain helpers


def _parse_port(text: str) -> tuple[int, str]:
    number, _, proto = text.partition("/")
    if not number.strip().isdigit():
        raise UsageError(f"--port {text!r}: give a port number, optionally with a protocol: 5432 or 5432/tcp")
    port = int(number)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {text!r}: the port must be from 0 to 65535")
    return port, (proto.strip().lower() or "tcp")


def _resolve(evaluator: Any, inventory: Any, text: str, store_root: Path, option: str) -> Any:
    """An endpoint from NAMESPACE/WORKLOAD or an IP, via the inventory, the policies, then the store."""
    import ipaddress

    from flowlens.policy.simulate import endpoint_from_record

    text = text.strip()
    is_ip = True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        is_ip = False
    if is_ip or inventory is not None:
        try:
            endpoint = evaluator.endpoint(text)
        except PolicyError:
            endpoint = None
        if endpoint is not None and (endpoint.kind != "net" or not Store(store_root).flow_files()):
            return endpoint
    namespace, sep, workload = text.partition("/")
    params = {"ip": text} if is_ip else {"namespace": namespace, "workload": workload}
    if not is_ip and not sep:
        raise UsageError(f"{option} {text!r}: give NAMESPACE/WORKLOAD or an IP address")
    store = Store(store_root)
    if store.flow_files():
        from flowlens.engine import connect

        with connect(store) as engine:
            rows = engine.run("policy-endpoints", params, limit=1).to_pylist()
        if rows:
            r = rows[0]
            return endpoint_from_record(
                r["type"], r["namespace"], r["name"], r["name_aggr"], r["ip"], r["labels"]
            )
    if is_ip:
        return evaluator.endpoint(text)
    raise UsageError(
        f"{option} {text!r}: no such workload in the inventory or the flow store; give --inventory "
        "(kubectl get namespaces,pods,serviceaccounts -A -o yaml) or check the name"
    )


def _explain_text(expl: Any) -> str:
    conn = expl.connection
    port = "?" if expl.port is None else expl.port
    lines = [
        f"Connection {expl.source.display} -> {expl.dest.display} {expl.proto}/{port}: "
        f"{'ALLOWED' if conn.action == 'allow' else 'DENIED'}",
        "",
        "Egress (at the source):",
        *(f"  {s}" for s in expl.egress_steps),
        f"  Verdict: {conn.egress.action}" + ("" if conn.egress.evaluated else " (not evaluated)"),
        f"  Trace: {', '.join(conn.egress.enforced_hits) or '-'}",
        "",
        "Ingress (at the destination):",
        *(f"  {s}" for s in expl.ingress_steps),
        f"  Verdict: {conn.ingress.action}" + ("" if conn.ingress.evaluated else " (not evaluated)"),
        f"  Trace: {', '.join(conn.ingress.enforced_hits) or '-'}",
    ]
    if (
        conn.pending_action != conn.action
        or conn.egress.pending_hits != conn.egress.enforced_hits
        or (conn.ingress.pending_hits != conn.ingress.enforced_hits)
    ):
        lines += [
            "",
            f"With staged policies enforced: {'ALLOWED' if conn.pending_action == 'allow' else 'DENIED'}",
            f"  egress pending trace: {', '.join(conn.egress.pending_hits) or '-'}",
            f"  ingress pending trace: {', '.join(conn.ingress.pending_hits) or '-'}",
        ]
    if conn.notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in conn.notes)]
    lines.append(
        "The connection is allowed only if both sides allow it (sides that are not Calico endpoints are not evaluated)."
    )
    return "\n".join(lines) + "\n"


def _explain_json(expl: Any) -> str:
    conn = expl.connection

    def side(decision: Any, steps: Sequence[str]) -> dict[str, Any]:
        return {
            "action": decision.action,
            "evaluated": decision.evaluated,
            "trace": list(decision.enforced_hits),
            "pending_action": decision.pending_action,
            "pending_trace": list(decision.pending_hits),
            "steps": list(steps),
            "notes": list(decision.notes),
        }

    doc = {
        "source": expl.source.display,
        "dest": expl.dest.display,
        "proto": expl.proto,
        "dest_port": expl.port,
        "action": conn.action,
        "pending_action": conn.pending_action,
        "egress": side(conn.egress, expl.egress_steps),
        "ingress": side(conn.ingress, expl.ingress_steps),
    }
    return json.dumps(doc, indent=2) + "\n"


# --------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``explain`` to ``app``."""

    @app.command("simulate", help=SIMULATE_HELP)
    def simulate_cmd(
        policies: Annotated[
            list[Path], typer.Option("--policies", help="candidate policy manifests: files or folders")
        ],
        base: Annotated[
            list[Path] | None,
            typer.Option("--base", help="policies in force; --policies are applied on top of them"),
        ] = None,
        inventory: Annotated[
            list[Path] | None,
            typer.Option("--inventory", help="kubectl get namespaces,pods,serviceaccounts -A -o yaml output"),
        ] = None,
        namespace: Annotated[
            str | None, typer.Option("--namespace", help="only flows whose source or destination is here")
        ] = None,
        since: Annotated[
            str | None, typer.Option("--since", help="window start: 24h, 7d or ISO time")
        ] = None,
        until: Annotated[str | None, typer.Option("--until", help="window end: ISO time or duration")] = None,
        store: StoreOpt = None,
        fmt: Annotated[
            SimFormat, typer.Option("--format", help="table, json, jsonl or markdown")
        ] = SimFormat.table,
        fail_on: Annotated[
            FailOn | None,
            typer.Option(
                "--fail-on", help="exit 10 when there are newly-denied, newly-allowed or any changes"
            ),
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="write the output to this file")] = None,
    ) -> None:
        from flowlens.engine import connect
        from flowlens.policy.simulate import simulate

        root = _store_root(store)
        if not root.is_dir():
            raise StoreError(f"no flow store at {str(root)!r}; run 'flowlens ingest' first or pass --store")
        policy_set, inv = _load(policies, base or [], inventory or [])
        with connect(Store(root), since=since, until=until) as engine:
            result = simulate(engine, policy_set, inv, namespace=namespace)
        renderers = {
            SimFormat.table: render_table,
            SimFormat.markdown: render_markdown,
            SimFormat.json: render_json,
            SimFormat.jsonl: render_jsonl,
        }
        _emit(renderers[fmt](result), out)
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
        policies: Annotated[
            list[Path], typer.Option("--policies", help="policy manifests: files or folders")
        ],
        source: Annotated[str, typer.Option("--from", help="NAMESPACE/WORKLOAD or IP")],
        dest: Annotated[str, typer.Option("--to", help="NAMESPACE/WORKLOAD or IP")],
        port: Annotated[str, typer.Option("--port", help="destination port, e.g. 5432 or 53/udp")],
        inventory: Annotated[
            list[Path] | None,
            typer.Option("--inventory", help="kubectl get namespaces,pods,serviceaccounts -A -o yaml output"),
        ] = None,
        base: Annotated[
            list[Path] | None,
            typer.Option("--base", help="policies in force; --policies are applied on top of them"),
        ] = None,
        store: StoreOpt = None,
        fmt: Annotated[ExplainFormat, typer.Option("--format", help="text or json")] = ExplainFormat.text,
        out: Annotated[Path | None, typer.Option("--out", help="write the output to this file")] = None,
    ) -> None:
        from flowlens.policy import Evaluator

        port_number, proto = _parse_port(port)
        policy_set, inv = _load(policies, base or [], inventory or [])
        evaluator = Evaluator(policy_set, inv)
        root = _store_root(store)
        src = _resolve(evaluator, inv, source, root, "--from")
        dst = _resolve(evaluator, inv, dest, root, "--to")
        expl = evaluator.explain(src, dst, proto, port_number)
        _emit(_explain_text(expl) if fmt is ExplainFormat.text else _explain_json(expl), out)
        _notes(policy_set.notes)
