"""One large source read by several Spark tasks, with exactly what reading it whole stores.

An uncompressed local source with more than the split size (:data:`flowlens.ingest.spark_plan.
SPLIT_BYTES_CONF`) left to read after its checkpoint is cut into byte ranges of whole lines,
each read by a task of its own (:class:`~flowlens.ingest.spark_plan.Part`):

1. the driver (:func:`plan_split`) reads the source's first lines, finds its lineage and
   checkpoint as a task would (:func:`flowlens.ingest.checkpoints.find_lineage`), and leaves it
   whole when a task would not read it line by line from there (a whole JSON document, a copy or
   an Elasticsearch export checked record by record, a format it cannot tell): those go as before;
2. it reads the source once to the end of its last whole line (:func:`_scan`): the hash of
   everything consumed (the checkpoint's), and for each nominal cut ``start + k * step`` the
   range boundary just after the first newline at or past it (a line crossing a cut, or starting
   right on it, belongs to the range before), each range's newlines (prefix sums give every
   range's first line number, exactly) and each range's own hash;
3. each task parses its range with the pipeline of a whole source (:func:`read_part`, the same
   reading of whole lines and long lines, parse, checks, quarantine and rows), its lines numbered
   from the range's first line number, and hands back its accounting, the bytes and lines it
   consumed and their hash;
4. the driver (:func:`assemble`) checks every range against its scan (a source rewritten in the
   meantime is left out of the run, its ranges' files dropped, and said) and makes of the ranges
   one file's facts: one :class:`~flowlens.ingest.accounting.FileSummary`, one lineage advanced
   to the end of the last whole line, one span, as reading the source whole gives.

Bytes after the last newline wait for the next run, as they do when the source is read whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from typing import IO, TYPE_CHECKING, Any

import xxhash

from flowlens.errors import InputError
from flowlens.formats import detect, get_format
from flowlens.ingest.accounting import FileSummary
from flowlens.ingest.checkpoints import (
    ContentHash,
    advance,
    early_keys,
    find_lineage,
    head_key,
    needs_check,
)
from flowlens.ingest.documents import is_document
from flowlens.ingest.options import IngestOptions
from flowlens.ingest.pipeline import read_head
from flowlens.ingest.runs import holds_elasticsearch
from flowlens.ingest.sources import BLOCK_BYTES, Source, Unreadable, read_blocks
from flowlens.ingest.spark_plan import Part, TaskSpec, bin_round
from flowlens.store import Span

if TYPE_CHECKING:
    from flowlens.ingest.accounting import IngestSummary
    from flowlens.ingest.pipeline import Ingester

#: Bytes read at a time when looking back from the end of a source for its last newline.
_TAIL_PIECE = 1 << 20


@dataclasses.dataclass
class SplitPlan:
    """What the driver knows of a source it splits: where it resumes (``start_bytes``, after
    ``start_lines`` lines, from ``checkpoint`` of the lineage ``lineage_id``, or from its start
    in a new lineage: None), its size when planned, the end of its last whole line
    (``consumed``), the hash of everything before that, and its ranges, each with the newlines
    and the hash the driver read in it."""

    index: int
    path: str
    fmt: str
    head: bytes
    lineage_id: str | None
    checkpoint: dict[str, Any] | None
    start_bytes: int
    start_lines: int
    size: int
    consumed: int
    digest: str
    parts: list[Part]
    lines: list[int]
    hashes: list[str]


class _Range:
    """Bytes ``start`` to ``end`` of a file, read as a file whose end is ``end``."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._fh.seek(start)
        self._left = end - start

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), self._left)
        if n <= 0:
            return 0
        got = self._fh.readinto(view[:n]) or 0
        self._left -= got
        return got

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


def _last_line_end(fh: IO[bytes], start: int, size: int) -> int:
    """Just after the last newline of the file's bytes ``start`` to ``size`` (``start``: none)."""
    pos = size
    while pos > start:
        low = max(start, pos - _TAIL_PIECE)
        fh.seek(low)
        found = fh.read(pos - low).rfind(b"\n")
        if found >= 0:
            return low + found + 1
        pos = low
    return start


def _scan(fh: IO[bytes], start: int, end: int, step: int) -> tuple[str, list[int], list[int], list[str]]:
    """Read the file ``fh`` from its beginning to ``end`` (just after a newline): the hash of it
    all, and the ranges of ``start`` to ``end``, cut just after the first newline at or past each
    ``start + k * step``: their boundaries (``start`` first, ``end`` last), newlines and hashes."""
    total = xxhash.xxh3_128()
    bounds, lines, hashes = [start], [], []
    piece_hash, piece_lines = xxhash.xxh3_128(), 0
    cut: int | None = start + step if start + step < end else None
    fh.seek(0)
    pos = 0
    while pos < end:
        block = fh.read(min(BLOCK_BYTES, end - pos))
        if not block:
            raise OSError("the file ended before the bytes planned (it was cut short while being read)")
        total.update(block)
        view = memoryview(block)
        i, n = max(0, start - pos), len(block)
        while i < n:
            at = max(i, cut - pos) if cut is not None else n
            found = block.find(b"\n", at) if at < n else -1
            stop = found + 1 if found >= 0 else n
            piece_hash.update(view[i:stop])
            piece_lines += block.count(b"\n", i, stop)
            i = stop
            if found >= 0:  # a boundary: the range before it ends with the line crossing the cut
                boundary = pos + stop
                bounds.append(boundary)
                lines.append(piece_lines)
                hashes.append(piece_hash.hexdigest())
                piece_hash, piece_lines = xxhash.xxh3_128(), 0
                assert cut is not None
                while cut is not None and cut < boundary:  # (cuts inside that line: no range)
                    cut += step
                    if cut >= end:
                        cut = None
        pos += n
    if bounds[-1] < end:
        bounds.append(end)
        lines.append(piece_lines)
        hashes.append(piece_hash.hexdigest())
    return total.hexdigest(), bounds, lines, hashes


def plan_split(
    index: int,
    path: str,
    fmt_name: str | None,
    manifest: dict[str, Any],
    options: IngestOptions,
    ingest_id: str,
    split_bytes: int,
) -> SplitPlan | None:
    """(On the driver.) The ranges of the local source ``path`` (``index`` in the run) for tasks
    of their own, with the run's ``manifest`` as it is before the round that reads it; None when
    it is read whole (see the module's docstring): compressed, at most ``split_bytes`` left to
    read, or not read line by line from its checkpoint; also when it cannot be read (its task
    then says why)."""
    try:
        source = Source(path, None, max_expansion=options.max_expansion)
    except Unreadable:
        return None
    with contextlib.closing(source):
        if source.compressed:
            return None  # (gzip: one stream from its first byte)
        try:
            with source.open() as stream:
                head, _ = read_head(read_blocks(stream, []), options.max_line_bytes)
            name = fmt_name or options.format or detect(head)
            fmt = get_format(name).name if head and name is not None else None
            if fmt is None or is_document(head, fmt):
                return None
            lineage, checkpoint = find_lineage(source, head, manifest, ingest_id)
            start_bytes = checkpoint["bytes"] if checkpoint else 0
            copy = needs_check(manifest, head, start_bytes, resumed=checkpoint is not None)
            if copy or (fmt == "elasticsearch" and holds_elasticsearch(manifest)):
                return None  # checked record by record: its task hands it back to the driver
            with open(path, "rb") as fh:
                size = fh.seek(0, 2)
                consumed = _last_line_end(fh, start_bytes, size)
                if consumed - start_bytes <= split_bytes:
                    return None
                count = -(-(consumed - start_bytes) // split_bytes)
                step = -(-(consumed - start_bytes) // count)
                digest, bounds, lines, hashes = _scan(fh, start_bytes, consumed, step)
        except (OSError, ValueError, InputError):
            return None  # (read whole, its task says what is wrong)
    start_lines = checkpoint["lines"] if checkpoint else 0
    parts, before = [], start_lines
    for number, (low, high) in enumerate(itertools.pairwise(bounds)):
        parts.append(Part(number, low, high, before))
        before += lines[number]
    return SplitPlan(
        index=index,
        path=path,
        fmt=fmt,
        head=head,
        lineage_id=lineage["id"] if checkpoint else None,
        checkpoint=dict(checkpoint) if checkpoint else None,
        start_bytes=start_bytes,
        start_lines=start_lines,
        size=size,
        consumed=consumed,
        digest=digest,
        parts=parts,
        lines=lines,
        hashes=hashes,
    )


def part_tasks(plan: SplitPlan, ingest_id: str, round_number: int) -> list[TaskSpec]:
    """One task per range of ``plan``."""
    return [
        TaskSpec(
            f"{ingest_id}-r{round_number}-s{plan.index:06d}-p{part.number:04d}",
            ((plan.index, plan.path, plan.fmt),),
            part,
        )
        for part in plan.parts
    ]


def read_part(run: Ingester, task: TaskSpec, summary: IngestSummary) -> dict[str, Any]:
    """(On an executor.) Read the range ``task.part`` of ``task``'s source into ``run``'s commit,
    counted in a :class:`FileSummary` of its own (appended to ``summary``); what it consumed:
    ``bytes``, ``lines`` and the ``hash`` of those bytes."""
    part = task.part
    assert part is not None
    ((_, path, fmt_name),) = task.sources
    fs = FileSummary(path=path)
    summary.files.append(fs)
    fmt = get_format(fmt_name or "")
    fs.format = fmt.name
    hasher = ContentHash()
    consumed = lines = 0
    try:
        source = Source(path, None, max_expansion=run.options.max_expansion)
        with contextlib.closing(source), contextlib.closing(hasher):
            stream = _Range(path, part.start, part.end)
            with contextlib.closing(stream):
                consumed, end_line = run._stream(
                    stream,  # type: ignore[arg-type]
                    source,
                    fmt,
                    fs,
                    hasher,
                    0,
                    part.first_line,
                    at_start=part.start == 0,  # (a range inside the file starts at no mark)
                )
            lines = end_line - part.first_line
    except (Unreadable, OSError) as exc:
        run._fail(fs, getattr(exc, "problem", None) or f"cannot be read ({exc})")
    return {"number": part.number, "bytes": consumed, "lines": lines, "hash": hasher.hexdigest()}


def assemble(
    plan: SplitPlan,
    results: dict[int, tuple[FileSummary, dict[str, Any]]],
    manifest: dict[str, Any],
    ingest_id: str,
) -> tuple[FileSummary, Span | None, str | None]:
    """(On the driver.) The facts of the split source ``plan`` from its ranges' ``results`` (by
    range number: the range's summary and what it consumed): its summary, its lineage advanced in
    ``manifest`` and the span its rows hold, as reading it whole in one task gives; or, when a
    range is not what the driver read (the source changed meanwhile, or could not be read), a
    summary saying so, nothing advanced, and the problem."""
    problem = None
    for part, lines, digest in zip(plan.parts, plan.lines, plan.hashes, strict=True):
        got = results.get(part.number)
        if got is None:
            problem = "internal: a range of it was not read"
        elif got[0].error:
            problem = got[0].error
        elif (got[1]["bytes"], got[1]["lines"], got[1]["hash"]) != (part.end - part.start, lines, digest):
            problem = (
                f"it changed while it was being read (bytes {part.start:,} to {part.end:,} differ from the "
                "bytes planned); nothing of it was stored: it is read again by the next run"
            )
        if problem is not None:
            return FileSummary(path=plan.path, format=plan.fmt, error=problem), None, problem
    fs = FileSummary(path=plan.path, format=plan.fmt, skipped=plan.start_lines, lines_read=plan.start_lines)
    for number in sorted(results):
        one = results[number][0]
        for name in ("lines_read", "rows", "quarantined", "ignored", "diagnosed"):
            setattr(fs, name, getattr(fs, name) + getattr(one, name))
        for key, count in one.reasons.items():
            fs.reasons[key] = fs.reasons.get(key, 0) + count
        fs.warnings.extend(w for w in one.warnings if w not in fs.warnings)
    fs.bytes_read = plan.size
    waiting = plan.size - plan.consumed
    if waiting:
        fs.pending_bytes = waiting
        fs.warnings.append(f"{waiting} bytes of an unfinished last line wait for the next run")
    if plan.lineage_id is None:
        lineage: dict[str, Any] = {
            "id": f"{ingest_id}:{len(manifest['sources'])}",
            "head": head_key(plan.head),
            "checkpoints": [],
            "early": early_keys(plan.head),
        }
    else:
        lineage = next(s for s in manifest["sources"] if s["id"] == plan.lineage_id)
    had_checkpoints = bool(lineage["checkpoints"])
    advance(
        manifest,
        lineage,
        start_bytes=plan.start_bytes,
        consumed=plan.consumed,
        lines=plan.start_lines + sum(plan.lines),
        digest=lambda: plan.digest,
        path=plan.path,
        fmt=plan.fmt,
        ingest_id=ingest_id,
    )
    span = None
    if plan.consumed > plan.start_bytes or (plan.consumed and not had_checkpoints):
        end = next(cp for cp in lineage["checkpoints"] if cp["bytes"] == plan.consumed)
        span = Span(
            lineage["id"], lineage["head"], dict(plan.checkpoint) if plan.checkpoint else None, dict(end)
        )
    return fs, span, None


def plan_round(
    members: list[int],
    files: list[tuple[str, str | None]],
    sizes: list[int],
    slots: int,
    manifest: dict[str, Any],
    options: IngestOptions,
    ingest_id: str,
    round_number: int,
    split_bytes: int,
    local: list[bool],
) -> tuple[list[TaskSpec], dict[int, SplitPlan]]:
    """The tasks of one round and the sources read in ranges (by index in the run): each local
    (``local``, by index) source with more than ``split_bytes`` bytes that :func:`plan_split`
    finds can be, with the run's ``manifest`` as it is before the round, is read by a task per
    range; the others whole, shared among at most ``slots`` tasks
    (:func:`flowlens.ingest.spark_plan.bin_round`). One slot: every source is read whole."""
    whole, splits = [], {}
    for index in members:
        path, fmt = files[index]
        plan = None
        if split_bytes > 0 and slots > 1 and sizes[index] > split_bytes and local[index]:
            plan = plan_split(index, path, fmt, manifest, options, ingest_id, split_bytes)
        if plan is None:
            whole.append(index)
        else:
            splits[index] = plan
    tasks = bin_round(whole, files, sizes, slots, ingest_id, round_number) if whole else []
    for plan in splits.values():
        tasks += part_tasks(plan, ingest_id, round_number)
    return tasks, splits
