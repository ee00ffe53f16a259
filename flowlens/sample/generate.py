"""The sample generator: simulated intervals -> lines of each format -> files.

Everything is streamed: intervals are simulated a few hours at a time (``traffic.CHUNK``
intervals), rendered interval by interval and written in blocks of about half a megabyte, so memory
does not grow with the number of records (only with the model and, for Whisker, with one hour of
distinct flows).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import random
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flowlens.errors import UsageError
from flowlens.sample import render
from flowlens.sample.layouts import DEFAULT_LAYOUT, Layout, get_layout
from flowlens.sample.logfiles import RotatingLog
from flowlens.sample.model import ClusterModel
from flowlens.sample.records import INTERVAL, Decide, Interval, declared_decisions
from flowlens.sample.schedule import SLOTS_PER_DAY
from flowlens.sample.traffic import TrafficModel

FORMATS = ("enterprise", "elasticsearch", "goldmane", "whisker")
DEFAULT_SEED = 1
DEFAULT_DAYS = 2.0
#: lumberjack's default (flowLogsFileMaxFileSizeMB = 100)
DEFAULT_ROTATE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class SampleOptions:
    """What to generate. ``start`` is required: the library never reads the clock."""

    start: dt.datetime
    days: float | None = DEFAULT_DAYS
    records: int | None = None
    seed: int = DEFAULT_SEED
    formats: tuple[str, ...] = ("enterprise",)
    #: the record layout of Enterprise and Elasticsearch output (see flowlens.sample.layouts)
    layout: str = DEFAULT_LAYOUT
    #: the 2025 layout (F1 hits, all_policies): the same as ``layout="2025"``
    legacy_hits: bool = False
    rotate_bytes: int = DEFAULT_ROTATE_BYTES
    whisker_stream_hours: int = 1
    #: gzip every file except the live ``flows.log`` (``.ndjson.gz``, ``.json.gz``, ``.sse.gz``)
    compress: bool = False
    #: gzip level for rotated logs and compressed files (1 = fast, 9 = small)
    gzip_level: int = 1

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise UsageError("the start time needs a time zone (use UTC, e.g. 2026-11-24T00:00:00Z)")
        for f in self.formats:
            if f not in FORMATS:
                raise UsageError(f"unknown format {f!r}: choose from {', '.join(FORMATS)} or all")
        if self.days is not None and self.days <= 0:
            raise UsageError("--days must be positive")
        if self.records is not None and self.records < 0:
            raise UsageError("--records must not be negative")
        if self.days is None and self.records is None:
            raise UsageError("give --days or --records (or both)")
        if self.rotate_bytes < 1024:
            raise UsageError("the rotation size must be at least 1 KiB")
        if not 1 <= self.gzip_level <= 9:
            raise UsageError("the gzip level must be between 1 and 9")
        get_layout(self.layout)
        if self.legacy_hits and self.layout not in (DEFAULT_LAYOUT, "2025"):
            raise UsageError(
                f"--legacy-hits is the 2025 layout: it cannot be combined with --layout {self.layout}"
            )

    @property
    def start_epoch(self) -> int:
        t = int(self.start.timestamp())
        return t - t % INTERVAL

    @property
    def record_layout(self) -> Layout:
        return get_layout("2025" if self.legacy_hits else self.layout)

    @property
    def intervals(self) -> int | None:
        return None if self.days is None else max(1, round(self.days * 86400 / INTERVAL))


@dataclass(frozen=True)
class SampleSummary:
    """What ``write_sample`` wrote."""

    records: int  # Felix records (enterprise/elasticsearch lines)
    intervals: int
    start: dt.datetime
    end: dt.datetime
    files: tuple[tuple[str, str, int], ...]  # (format, path relative to out, lines; whisker: responses)

    def by_format(self) -> dict[str, tuple[int, int]]:
        """Per format, in the order written: how many files, and their lines (Whisker: responses
        and stream events)."""
        counts: dict[str, tuple[int, int]] = {}
        for fmt, _, lines in self.files:
            n, total = counts.get(fmt, (0, 0))
            counts[fmt] = (n + 1, total + lines)
        return counts


def _decide(model: ClusterModel, decide: Decide | None) -> Decide:
    return decide if decide is not None else default_decisions(model)


def default_decisions(model: ClusterModel) -> Decide:
    """The policy engine's decisions when it is available and the model names its policies,
    otherwise the traces the model declares."""
    from flowlens.sample.decide import engine_decisions

    engine = engine_decisions(model)
    return engine if engine is not None else declared_decisions(model)


def intervals(
    model: ClusterModel, options: SampleOptions, decide: Decide | None = None
) -> Iterator[Interval]:
    """The simulated intervals, honouring --days and --records (a generator)."""
    traffic = TrafficModel(model, _decide(model, decide))
    total = options.intervals
    budget = options.records
    want: Callable[[int], int | None] | None = None
    if budget is not None and total is not None:
        # the records spread evenly over the intervals, filled up with internet scans
        def want(i: int) -> int | None:
            return budget * (i + 1) // total - budget * i // total

    emitted = 0
    for iv in traffic.simulate(options.start_epoch, options.seed, total, want):
        if want is not None:
            del iv.records[want(iv.index) :]
        elif budget is not None and len(iv.records) > budget - emitted:
            del iv.records[budget - emitted :]
        emitted += len(iv.records)
        yield iv
        if total is None and budget is not None and emitted >= budget:
            return


def estimate_days(
    model: ClusterModel, records: int, seed: int = DEFAULT_SEED, decide: Decide | None = None
) -> float:
    """How many days of this model's traffic hold about ``records`` Felix records."""
    traffic = TrafficModel(model, _decide(model, decide))
    per_day = sum(len(iv.records) for iv in traffic.simulate(0, seed, SLOTS_PER_DAY))
    return max(records / max(per_day, 1), INTERVAL / 86400)


# -- per-format producers ----------------------------------------------------------------------

#: (relative file name, text of one or more complete lines)
Chunk = tuple[str, str]
#: a chunk (text, or UTF-8 bytes in parts to be joined) and how many records it holds (lines;
#: Whisker: responses or events)
Counted = tuple[str, str | list[bytes], int]


def _text(data: str | list[bytes]) -> str:
    return data if isinstance(data, str) else b"".join(data).decode()


class _Producer:
    fmt = ""

    def feed(self, iv: Interval) -> list[Counted]:
        raise NotImplementedError

    def finish(self) -> list[Counted]:
        return []


class _Enterprise(_Producer):
    """Felix ``flows.log``: one file per node (the node's ``/var/log/calico/flowlogs``)."""

    fmt = "enterprise"

    def __init__(self, layout: Layout, cluster: str) -> None:
        self.layout = layout
        # A layout with what fluentd and Linseed add (a bare Elasticsearch document): the
        # fields after @timestamp, which change with every record.
        self.es_tail = (',"cluster":' + render.dumps(cluster) + ',"generated_time":"').encode()

    def feed(self, iv: Interval) -> list[Counted]:
        layout, counters = self.layout, render.ENTERPRISE_COUNTERS
        out: list[Counted] = []
        host = None
        parts: list[bytes] = []
        head = stamp = b""
        per_line = 5 if layout.es_fields else 4
        for rk, c in iv.records:  # the records of a node come together
            if rk.host != host:
                if parts:
                    out.append((f"{host}/flows.log", parts, len(parts) // per_line))
                host, parts = rk.host, []
                s = iv.start + rk.offset  # the node's flush time
                head = b'{"start_time":%d,"end_time":%d' % (s, s + INTERVAL)
                if layout.es_fields:
                    generated = render.go_time((s + INTERVAL) * 1000 + 2500).encode()
                    stamp = b"%d%s%s" % ((s + INTERVAL) * 1000, self.es_tail, generated)
            a, b = rk.ent_a or render.enterprise_parts(rk, layout)
            parts += (head, a, counters % c, b)
            if layout.es_fields:
                parts.append(b'%s","id":"%d-%d"}\n' % (stamp, iv.index, rk.index))
        if parts:
            out.append((f"{host}/flows.log", parts, len(parts) // per_line))
        return out


class _Elasticsearch(_Producer):
    """An export of the ``tigera_secure_ee_flows`` index: one file per day."""

    fmt = "elasticsearch"

    def __init__(self, layout: Layout, cluster: str, seed: int) -> None:
        self.layout = layout
        self.cluster = cluster
        self.prefix = render.es_prefix(cluster)
        self.suffix = ',"cluster":' + render.dumps(cluster) + ',"generated_time":"'
        self.rng = random.Random(seed * 7919 + 17)  # noqa: S311 - document ids, not secrets

    def feed(self, iv: Interval) -> list[Counted]:
        getrandbits = self.rng.getrandbits
        b64 = base64.urlsafe_b64encode
        layout, t0 = self.layout, iv.start
        prefix, suffix = self.prefix, self.suffix
        day = dt.datetime.fromtimestamp(t0, dt.UTC).strftime("%Y-%m-%d")
        seconds: dict[int, str] = {}
        lines: list[str] = []
        for rk, c in iv.records:
            a, b = rk.es_tpl or render.elasticsearch_parts(rk, layout)
            s = t0 + rk.offset
            e = s + INTERVAL
            doc_id = b64(getrandbits(120).to_bytes(15, "big")).decode()
            # Linseed receives the record a few seconds after fluentd read it
            ms = e * 1000 + 1500 + getrandbits(15)
            sec, frac = divmod(ms, 1000)
            stamp = seconds.get(sec)
            if stamp is None:
                stamp = seconds[sec] = dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            generated = f"{stamp}.{frac:03d}".rstrip("0").rstrip(".") + "Z"
            lines.append(
                f'{prefix}{doc_id}","_score":null,"_source":{{"start_time":{s},"end_time":{e}{a}'
                f',"bytes_in":{c[0]},"bytes_out":{c[1]},"num_flows":{c[2]},"num_flows_started":{c[3]}'
                f',"num_flows_completed":{c[4]},"packets_in":{c[5]},"packets_out":{c[6]}'
                f'{b}{e * 1000}{suffix}{generated}"}}}}\n'
            )
        return [(f"flows-{day}.ndjson", "".join(lines), len(lines))] if lines else []


def _aggregate(iv: Interval) -> dict[tuple[Any, ...], list[Any]]:
    """Goldmane's view of one window: records of all nodes merged by their key, counters summed,
    labels intersected."""
    agg: dict[tuple[Any, ...], list[Any]] = {}
    for rk, c in iv.records:
        a = agg.get(rk.gm_key)
        if a is None:
            agg[rk.gm_key] = [rk, list(c), [rk.src_labels], [rk.dst_labels]]
        else:
            ac = a[1]
            for j in range(7):
                ac[j] += c[j]
            if rk.src_labels not in a[2]:
                a[2].append(rk.src_labels)
            if rk.dst_labels not in a[3]:
                a[3].append(rk.dst_labels)
    return agg


class _Goldmane(_Producer):
    """Goldmane's emitter: flows aggregated across nodes into 5-minute windows, one file per day."""

    fmt = "goldmane"

    def feed(self, iv: Interval) -> list[Counted]:
        day = dt.datetime.fromtimestamp(iv.start, dt.UTC).strftime("%Y-%m-%d")
        lines = [
            render.goldmane_line(
                render.goldmane_key(rk),
                iv.start,
                iv.start + INTERVAL,
                render.intersect(sl),
                render.intersect(dl),
                c,
            )
            for rk, c, sl, dl in _aggregate(iv).values()
        ]
        return [(f"flows-{day}.ndjson", "".join(lines), len(lines))] if lines else []


class _Whisker(_Producer):
    """Whisker ``/flows`` responses, one per hour, and the last hours as a watch event stream."""

    fmt = "whisker"

    def __init__(self, last_start: int | None, stream_hours: int) -> None:
        self.hour: int | None = None
        self.acc: dict[tuple[Any, ...], list[Any]] = {}
        self.stream_from = None if last_start is None else last_start + INTERVAL - stream_hours * 3600

    def _flush(self) -> list[Counted]:
        if self.hour is None or not self.acc:
            return []
        name = dt.datetime.fromtimestamp(self.hour, dt.UTC).strftime("flows-%Y-%m-%dT%H.json")
        items = [
            render.whisker_flow(rk, st, en, render.intersect(sl), render.intersect(dl), c)
            for rk, c, sl, dl, st, en in sorted(self.acc.values(), key=lambda a: (-a[4], a[0].index))
        ]
        self.acc = {}
        return [(name, render.dumps({"total": {"totalPages": 1}, "items": items}) + "\n", 1)]

    def feed(self, iv: Interval) -> list[Counted]:
        out: list[Counted] = []
        hour = iv.start - iv.start % 3600
        if hour != self.hour:
            out += self._flush()
            self.hour = hour
        stream = []
        for k, (rk, c, sl, dl) in _aggregate(iv).items():
            a = self.acc.get(k)
            if a is None:
                self.acc[k] = [rk, list(c), list(sl), list(dl), iv.start, iv.start + INTERVAL]
            else:
                for j in range(7):
                    a[1][j] += c[j]
                a[2].extend(x for x in sl if x not in a[2])
                a[3].extend(x for x in dl if x not in a[3])
                a[5] = iv.start + INTERVAL
            if self.stream_from is not None and iv.start >= self.stream_from:
                flow = render.whisker_flow(
                    rk, iv.start, iv.start + INTERVAL, render.intersect(sl), render.intersect(dl), c
                )
                stream.append("data: " + render.dumps(flow) + "\n\n")
        if stream:
            out.append(("flows-watch.sse", "".join(stream), len(stream)))
        return out

    def finish(self) -> list[Counted]:
        return self._flush()


def _producer(fmt: str, model: ClusterModel, options: SampleOptions) -> _Producer:
    if fmt == "enterprise":
        return _Enterprise(options.record_layout, model.cluster)
    if fmt == "elasticsearch":
        return _Elasticsearch(options.record_layout, model.cluster, options.seed)
    if fmt == "goldmane":
        return _Goldmane()
    total = options.intervals
    last = None if total is None else options.start_epoch + (total - 1) * INTERVAL
    return _Whisker(last, options.whisker_stream_hours)


def iter_chunks(
    model: ClusterModel, options: SampleOptions, fmt: str = "enterprise", decide: Decide | None = None
) -> Iterator[Chunk]:
    """The output of one format as (relative file name, complete lines), interval by interval:
    a generator, so memory stays flat whatever the number of records."""
    producer = _producer(fmt, model, options)
    for iv in intervals(model, options, decide):
        for rel, text, _ in producer.feed(iv):
            yield rel, _text(text)
    for rel, text, _ in producer.finish():
        yield rel, _text(text)


def iter_lines(
    model: ClusterModel, options: SampleOptions, fmt: str = "enterprise", decide: Decide | None = None
) -> Iterator[tuple[str, str]]:
    """Every line of one format as (relative file name, line with its newline); a generator.
    (Whisker ``.json`` files hold one response per file; the event stream's lines come as
    ``data: ...`` lines followed by their blank separator line.)"""
    for rel, text in iter_chunks(model, options, fmt, decide):
        for line in text.splitlines(keepends=True):
            yield rel, line


# -- files -----------------------------------------------------------------------------------------


_OWN_FILES = re.compile(
    r"^(flows\.log(\.\d+\.gz)?|\.flows\.log\.part\d+(\.gz)?|flows-[0-9T-]+\.(ndjson|json)(\.gz)?"
    r"|flows-watch\.sse(\.gz)?)$"
)


def _clean(folder: Path) -> None:
    """Remove files an earlier run wrote here (and only those), so no stale file survives."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and _OWN_FILES.match(path.name):
            path.unlink()


def _safe_join(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if root.resolve() not in target.parents:
        raise UsageError(f"refusing to write {rel!r} outside {root}")
    return target


def write_sample(
    model: ClusterModel,
    out: Path,
    options: SampleOptions,
    decide: Decide | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SampleSummary:
    """Generate and write every requested format under ``out/<format>/``."""
    producers = [_producer(f, model, options) for f in options.formats]
    logs: dict[str, RotatingLog] = {}
    handles: dict[tuple[str, str], tuple[IO[bytes], IO[bytes]]] = {}
    counts: dict[tuple[str, str], int] = {}
    records = 0
    n_intervals = 0
    first = last = options.start_epoch
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if options.compress else ""
    for fmt in options.formats:
        _clean(out / fmt)

    def close(key: tuple[str, str]) -> None:
        writer, raw = handles.pop(key)
        writer.close()
        if raw is not writer:
            raw.close()

    def emit(fmt: str, chunks: Iterable[Counted]) -> None:
        for rel, text, n in chunks:
            key = (fmt, rel)
            if fmt == "enterprise":
                log = logs.get(rel)
                if log is None:
                    log = logs[rel] = RotatingLog(
                        _safe_join(out / fmt, rel), options.rotate_bytes, options.gzip_level, pool
                    )
                log.write([text.encode()] if isinstance(text, str) else text, n)
                continue
            data = text.encode() if isinstance(text, str) else b"".join(text)
            counts[key] = counts.get(key, 0) + n
            handle = handles.get(key)
            if handle is None:
                path = _safe_join(out / fmt, rel + suffix)
                path.parent.mkdir(parents=True, exist_ok=True)
                if fmt == "whisker" and rel.endswith(".json"):  # one response per file
                    path.write_bytes(
                        gzip.compress(data, options.gzip_level, mtime=0) if options.compress else data
                    )
                    continue
                # files are written in time order: one open file per format is enough
                for other in [k for k in handles if k[0] == fmt]:
                    close(other)
                raw: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed by close()
                writer: Any = (
                    gzip.GzipFile(
                        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=options.gzip_level
                    )
                    if options.compress
                    else raw
                )
                handle = handles[key] = (writer, raw)
            handle[0].write(data)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowlens-gzip")
    try:
        for iv in intervals(model, options, decide):
            n_intervals += 1
            records += len(iv.records)
            last = iv.start
            for p in producers:
                emit(p.fmt, p.feed(iv))
            if progress is not None:
                progress(n_intervals, records)
        for p in producers:
            emit(p.fmt, p.finish())
    finally:
        for key in list(handles):
            close(key)
        pool.shutdown(wait=True)
    files: list[tuple[str, str, int]] = []
    for _, log in sorted(logs.items()):
        for path, lines in log.close():
            files.append(("enterprise", path.relative_to(out.resolve()).as_posix(), lines))
    for (fmt, rel), n in sorted(counts.items()):
        files.append((fmt, f"{fmt}/{rel}{suffix}", n))
    return SampleSummary(
        records=records,
        intervals=n_intervals,
        start=dt.datetime.fromtimestamp(first, dt.UTC),
        end=dt.datetime.fromtimestamp(last + INTERVAL, dt.UTC),
        files=tuple(files),
    )


def floor_start(now: dt.datetime, days: float) -> dt.datetime:
    """A start on a 5-minute boundary, ``days`` before ``now`` and one interval more: each node
    flushes its records up to an interval after that interval began (``node_offsets``), so that
    no record ends after ``now`` (what the CLI uses by default)."""
    t = int(now.timestamp() - days * 86400) - INTERVAL
    return dt.datetime.fromtimestamp(t - t % INTERVAL, dt.UTC)


__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "FORMATS",
    "SampleOptions",
    "SampleSummary",
    "estimate_days",
    "floor_start",
    "intervals",
    "iter_chunks",
    "iter_lines",
    "write_sample",
]
