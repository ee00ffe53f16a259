"""The options several commands share, each defined once, and the helpers that read them.

Every command that takes ``--store``, ``--since``/``--until``, ``--namespace``, ``--format``,
``--out``, ``--policies``, ``--inventory``, ``--base``, ``--queries``, ``--limit``, ``--json``,
``--progress`` or ``--reports`` takes it from here: the same names, short flags, help text,
checks and defaults. :data:`SHARED_OPTIONS` lists them; ``tests/cli/test_common_options.py`` walks
every command and fails when one of them is defined differently.

A flag has one meaning everywhere. Where commands need it with a different value type, the
variants are listed side by side here, under the same names and short flag: ``--format`` (each
command's own formats), ``--out`` (a file, or a folder of files), ``--namespace`` (a filter, or
the namespaces ``suggest`` writes policies for), ``--cluster`` (the cluster name of ingested rows,
or ``suggest``'s cluster-wide guardrails).

The rest of this module is what the command modules share: where the store is, the config file,
the window, lines on stderr.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowlens.cli.process import spare_pandas_import
from flowlens.config import ENGINE_NAMES, FORMAT_NAMES, Config, find_config, load_config
from flowlens.errors import StoreError, UsageError
from flowlens.output import OutputFormat, visible_lines
from flowlens.schema import validate_namespace
from flowlens.store import DEFAULT_STORE, Store
from flowlens.store.lifecycle import Lifecycle

if TYPE_CHECKING:
    from flowlens.engine.choice import EngineChoice

if TYPE_CHECKING:
    from flowlens.engine import Engine
    from flowlens.policy import PolicySet
    from flowlens.policy.versions import CalicoVersion

QUERIES_ENV = "FLOWLENS_QUERIES"
ENGINE_ENV = "FLOWLENS_ENGINE"
DEFAULT_REPORTS = Path("reports")


# --------------------------------------------------------------------------------------------
# Checks run while the options are parsed: a bad value stops with exit code 2 and one line.


def _check_since(value: str | None) -> str | None:
    if value is not None:
        _parse_time(value, "--since")
    return value


def _check_until(value: str | None) -> str | None:
    if value is not None:
        _parse_time(value, "--until")
    return value


def _parse_time(value: str, option: str) -> dt.datetime:
    from flowlens.engine.window import parse_time

    return parse_time(value, dt.datetime.now(dt.UTC), option=option)


def _check_namespace(value: str | None) -> str | None:
    return None if value is None else _namespace(value)


def _check_namespaces(values: list[str] | None) -> list[str] | None:
    return None if values is None else [_namespace(v) for v in values]


def _namespace(value: str) -> str:
    try:
        return validate_namespace(value)
    except UsageError as exc:
        raise UsageError(f"--namespace {exc}") from None


# --------------------------------------------------------------------------------------------
# The options


def _option(*names: str, help: str, **kwargs: Any) -> Any:
    """An option whose help says its default itself (or that has none worth showing)."""
    return typer.Option(*names, help=help, show_default=False, **kwargs)


STORE_HELP = (
    "Store folder, or with --engine spark a Hadoop URL (hdfs://, s3a://, gs://, abfss://, ...). "
    "Default: $FLOWLENS_STORE, else 'store' in ./flowlens.yaml (or $FLOWLENS_CONFIG), "
    f"else {DEFAULT_STORE}."
)
# A string, not a Path: pathlib would fold a URL's ``//`` (``hdfs://nn/x`` into ``hdfs:/nn/x``).
StoreOpt = Annotated[str | None, _option("--store", "-s", help=STORE_HELP, metavar="<path>")]

SinceOpt = Annotated[
    str | None,
    _option(
        "--since",
        help="Start of the window: a duration back from --until (or from now), 30m, 24h, 7d, 2w, "
        "or an ISO-8601 time (UTC unless it has an offset; a date means its midnight).",
        callback=_check_since,
    ),
]
UntilOpt = Annotated[
    str | None,
    _option(
        "--until",
        help="End of the window, exclusive: a duration back from now, or an ISO-8601 time.",
        callback=_check_until,
    ),
]

NamespaceOpt = Annotated[
    str | None,
    _option(
        "--namespace",
        "-n",
        help="Only flows whose source or destination is in this namespace.",
        callback=_check_namespace,
    ),
]
#: ``suggest``: the namespaces to write policies for, a list.
NamespacesOpt = Annotated[
    list[str] | None,
    _option(
        "--namespace",
        "-n",
        help="A namespace to write policies for (repeatable).",
        callback=_check_namespaces,
    ),
]


def _formats(what: str, names: tuple[str, ...] | type[StrEnum]) -> str:
    listed = [str(n) for n in names]
    return f"{what}: {', '.join(listed[:-1])} or {listed[-1]}."


class SimulationFormat(StrEnum):
    """``simulate --format`` (:data:`flowlens.policy.render.SIMULATION_FORMATS`)."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


class ExplanationFormat(StrEnum):
    """``explain --format`` (:data:`flowlens.policy.render.EXPLANATION_FORMATS`)."""

    text = "text"
    json = "json"


OutputFormatOpt = Annotated[
    OutputFormat, typer.Option("--format", "-f", help=_formats("Output format", OutputFormat))
]
SimulationFormatOpt = Annotated[
    SimulationFormat, typer.Option("--format", "-f", help=_formats("Output format", SimulationFormat))
]
ExplanationFormatOpt = Annotated[
    ExplanationFormat, typer.Option("--format", "-f", help=_formats("Output format", ExplanationFormat))
]
ReportFormatsOpt = Annotated[
    str, typer.Option("--format", "-f", help="Output formats, comma-separated: html, md, json.")
]
InputFormatOpt = Annotated[
    str | None,
    _option(
        "--format",
        "-f",
        help=_formats("Input format of every file (default: detected per file)", FORMAT_NAMES),
    ),
]
SAMPLE_FORMATS = (*FORMAT_NAMES, "all")
SampleFormatOpt = Annotated[
    str, typer.Option("--format", "-f", help=_formats("Format to write", SAMPLE_FORMATS))
]

OutFileOpt = Annotated[
    Path | None,
    _option("--out", "-o", help="Write to this file instead of stdout."),
]
OutFolderOpt = Annotated[
    Path | None,
    _option("--out", "-o", help="Write the files into this folder."),
]

PoliciesOpt = Annotated[
    list[Path] | None,
    _option(
        "--policies",
        help="Kubernetes and Calico policy manifests (YAML or JSON, Lists too): files or folders, "
        "repeatable.",
    ),
]
BaseOpt = Annotated[
    list[Path] | None,
    _option(
        "--base",
        help="The policies in force (files or folders, repeatable); --policies are applied on top of "
        "them, replacing those of the same kind, namespace and name.",
    ),
]
InventoryOpt = Annotated[
    list[Path] | None,
    _option(
        "--inventory",
        help="The cluster's inventory, `kubectl get namespaces,pods,serviceaccounts -A -o yaml` "
        "output: labels, service accounts and named ports the flow logs lack (repeatable).",
    ),
]
QueriesOpt = Annotated[
    list[Path] | None,
    _option(
        "--queries",
        help=f"A folder of your own *.sql queries (repeatable; also ${QUERIES_ENV} and 'queries' in "
        "flowlens.yaml). A file with the name of a shipped query overrides it.",
    ),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=0, help="At most N rows (0: all).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of text, for scripts.")]
ProgressOpt = Annotated[
    bool | None,
    _option(
        "--progress/--no-progress", help="Progress bar on stderr (default: only when stderr is a terminal)."
    ),
]
ReportsOpt = Annotated[
    Path | None,
    _option(
        "--reports",
        help="Reports folder. Default: 'reports' in ./flowlens.yaml (or $FLOWLENS_CONFIG), else ./reports.",
    ),
]

EngineOpt = Annotated[
    str | None,
    _option(
        "--engine",
        help=f"Query engine: {ENGINE_NAMES[0]} (in this process) or {ENGINE_NAMES[1]} "
        f"(pip install 'flowlens[spark]'). Default: ${ENGINE_ENV}, else 'engine' in flowlens.yaml, "
        f"else {ENGINE_NAMES[0]}.",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    _option(
        "--spark-master",
        help="With --engine spark: the Spark master (local[*], spark://host:7077, k8s://..., yarn). "
        "Default: the one spark-submit set, else local[*].",
    ),
]
SparkConfOpt = Annotated[
    list[str] | None,
    _option(
        "--spark-conf",
        help="With --engine spark: a Spark setting KEY=VALUE (repeatable), on top of spark-defaults.conf.",
    ),
]

ClusterNameOpt = Annotated[
    str | None,
    _option(
        "--cluster",
        help="Cluster name for every row (default: the record's own 'cluster' field, else the config's, "
        "else 'default').",
    ),
]
ClusterGuardrailsOpt = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help="Suggest the cluster guardrails instead: an Admin layer (per namespace, only the paths seen "
        "from other namespaces are passed on) and a Baseline layer (default deny with DNS, the "
        "cluster-wide clients and the ingress controller) from the traffic of every namespace, proven "
        "by replay with the --policies in force.",
    ),
]
CalicoVersionOpt = Annotated[
    str | None,
    _option(
        "--calico-version",
        help="The Calico version whose behaviour to model where versions differ: 3.31 (Calico "
        "v3.29-v3.31: AdminNetworkPolicy, BaselineAdminNetworkPolicy) or 3.32 (v3.32+: "
        "ClusterNetworkPolicy). Default: from the --policies, then the store's hits, else 3.32.",
    ),
]

#: Every shared option with the default each command gives it: ``(annotation, default)`` by
#: name. A command's option with one of these flags must be one of them exactly.
SHARED_OPTIONS: dict[str, tuple[Any, Any]] = {
    "store": (StoreOpt, None),
    "since": (SinceOpt, None),
    "until": (UntilOpt, None),
    "namespace": (NamespaceOpt, None),
    "namespaces (suggest)": (NamespacesOpt, None),
    "format (query results)": (OutputFormatOpt, OutputFormat.table),
    "format (simulate)": (SimulationFormatOpt, SimulationFormat.table),
    "format (explain)": (ExplanationFormatOpt, ExplanationFormat.text),
    "format (report)": (ReportFormatsOpt, "html,md,json"),
    "format (ingest)": (InputFormatOpt, None),
    "format (sample)": (SampleFormatOpt, "enterprise"),
    "out (file)": (OutFileOpt, None),
    "out (folder, default stdout)": (OutFolderOpt, None),
    "out (folder, sample)": (OutFolderOpt, Path("sample")),
    "policies": (PoliciesOpt, None),
    "base": (BaseOpt, None),
    "inventory": (InventoryOpt, None),
    "queries": (QueriesOpt, None),
    "limit": (LimitOpt, None),
    "limit (quarantine: a screenful)": (LimitOpt, 50),
    "json": (JsonOpt, False),
    "progress": (ProgressOpt, None),
    "reports": (ReportsOpt, None),
    "engine": (EngineOpt, None),
    "spark-master": (SparkMasterOpt, None),
    "spark-conf": (SparkConfOpt, None),
    "cluster (ingest: the cluster name)": (ClusterNameOpt, None),
    "cluster (suggest: the cluster guardrails)": (ClusterGuardrailsOpt, False),
    "calico-version": (CalicoVersionOpt, None),
}

#: Short flags kept for a while with another meaning on one command, and what to use instead.
DEPRECATED_SHORT_FLAGS: dict[tuple[str, str], str] = {("sample", "-n"): "--records"}


# --------------------------------------------------------------------------------------------
# Reading the options


def config() -> Config:
    """The config named by $FLOWLENS_CONFIG, else ./flowlens.yaml, else an empty one."""
    named = os.environ.get("FLOWLENS_CONFIG")
    if named:
        return load_config(Path(named))
    found = find_config(Path.cwd())
    return load_config(found) if found else Config()


def resolve_store(
    option: str | Path | None, choice: EngineChoice | None = None, *, unopened: bool = False
) -> Store:
    """--store, then $FLOWLENS_STORE, then the config file, then the default. A store at a Hadoop
    URL is opened on the Spark session of ``choice`` when it chooses Spark
    (:func:`flowlens.engine.choice.reach`) and refused otherwise (:class:`UsageError`): commands
    without ``choice`` read and write local (or mounted) stores only. ``unopened``: such a store
    is returned as it is, for the command to open (Spark ingest checks it can write it first)."""
    reach = (lambda store: store) if unopened else (lambda store: _reach(store, choice))
    if option is not None:
        return reach(Store.at(option))
    env = os.environ.get("FLOWLENS_STORE")
    if env:
        return reach(Store.at(env))
    cfg = config()
    if cfg.store is not None:
        return reach(Store.at(cfg.store))
    return Store(Path(DEFAULT_STORE))


def _reach(store: Store, choice: EngineChoice | None) -> Store:
    if not store.files.remote:
        return store
    if choice is None:
        raise UsageError(
            f"the store {store.location!r}: this command reads and writes local (or mounted) stores "
            "only: mount it (s3fs, gcsfuse, blobfuse, an NFS or HDFS mount) and give the mounted folder"
        )
    from flowlens.engine.choice import reach

    return reach(store, choice)


def existing_store(option: str | Path | None, choice: EngineChoice | None = None) -> Store:
    """The store as :func:`resolve_store` finds it, which must exist: commands that read flows."""
    store = resolve_store(option, choice)
    if not store.files.is_dir(store.root):
        raise StoreError(
            f"no flow store at {store.location!r}: ingest flow logs first (flowlens ingest), "
            "or point --store, $FLOWLENS_STORE or 'store' in flowlens.yaml at one"
        )
    return store


def resolve_reports(option: Path | None) -> Path:
    """--reports, then 'reports' in the config file, then ./reports."""
    if option is not None:
        return option
    configured = config().reports
    return configured if configured is not None else DEFAULT_REPORTS


def query_dirs(option: list[Path] | None) -> list[Path]:
    """Folders of the user's own queries, later ones overriding earlier ones: the config file's
    ``queries``, then $FLOWLENS_QUERIES (os.pathsep-separated), then each --queries."""
    found: list[Path] = []
    configured = config().queries
    if configured is not None:
        found.append(configured)
    env = os.environ.get(QUERIES_ENV, "")
    found += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return found + list(option or [])


def engine_choice(engine: str | None, master: str | None, conf: list[str] | None) -> EngineChoice:
    """--engine, then $FLOWLENS_ENGINE, then 'engine' in the config file, then DuckDB; with the
    Spark settings of --spark-master and --spark-conf."""
    from flowlens.engine.choice import EngineChoice
    from flowlens.engine.settings import SparkSettings

    name = engine or os.environ.get(ENGINE_ENV) or config().engine or ENGINE_NAMES[0]
    if name != "spark" and (master is not None or conf):
        raise UsageError("--spark-master and --spark-conf need --engine spark")
    settings = SparkSettings.parse(master, conf or ())
    if name.strip().lower() == "spark":
        quiet_spark_start(dict(settings.conf))
    else:
        spare_pandas_import()
    return EngineChoice(name.strip().lower(), settings)


def quiet_spark_start(conf: Mapping[str, str]) -> None:
    """A Spark JVM this process starts writes no start-up lines on stderr, unless the user
    configured Spark's logging (:mod:`flowlens.engine.spark_logging`)."""
    from flowlens.engine.spark_logging import SUBMIT_OPTIONS, submit_options

    options = submit_options(conf, os.environ)
    if options is not None:
        os.environ[SUBMIT_OPTIONS] = options


def window(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The ``[--since, --until)`` bounds, read against the current time (None: open)."""
    from flowlens.engine.window import resolve_window

    return resolve_window(since, until, dt.datetime.now(dt.UTC))


def required_policies(policies: list[Path] | None) -> list[Path]:
    """--policies for the commands that cannot run without them."""
    if not policies:
        raise UsageError("--policies is required: give a manifest file or a folder of manifests")
    return list(policies)


def show_progress(option: bool | None) -> bool:
    """--progress/--no-progress, else whether stderr is a terminal."""
    return stderr_is_tty() if option is None else option


def err(message: str) -> None:
    """A line for people, on stderr (control characters from untrusted input shown as escapes)."""
    typer.echo(visible_lines(message), err=True)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def lifecycle_of(cfg: Config) -> Lifecycle:
    """What ingest does to the store after each run, from ``retention:`` and ``compact_files:``."""
    default = Lifecycle()
    return Lifecycle(
        compact_files=default.compact_files if cfg.compact_files is None else cfg.compact_files,
        retention_days=cfg.retention_days,
    )


def calico_version(text: str | None, policy_set: PolicySet, engine: Engine | None) -> CalicoVersion | None:
    """--calico-version, else what the manifests show, else what the store's hits show (the
    :class:`~flowlens.policy.versions.CalicoVersion`, or None when nothing tells); says on stderr
    which one and why (rulebook G1)."""
    from flowlens.policy.versions import CalicoVersion, detect_from_policies, detect_from_store

    if text:
        return CalicoVersion.parse(text)
    version = detect_from_policies(policy_set)
    source = "the manifests"
    if version is None and engine is not None:
        version, source = detect_from_store(engine), "the policy hits in the store"
    if version is not None:
        err(f"flowlens: evaluating as {version.label} (detected from {source})")
    return version
