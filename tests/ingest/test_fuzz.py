"""Fuzzers: whatever a flow log or a manifest holds, only flowlens' own errors escape, and every
line of a flow log is accounted for (stored, quarantined, skipped or ignored), again on a second
run. Each input is a valid record of one format with values swapped for arbitrary JSON, raw
bytes, or a line of deep brackets; files are plain or gzipped, whole or cut short.

The example counts are modest so that the suite stays fast in CI (see docs/contributing.md);
raise them locally with ``--hypothesis-profile`` or by editing ``EXAMPLES``."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowlens.errors import FlowlensError, PolicyError
from flowlens.ingest import IngestOptions, ingest
from flowlens.policy import load_inventory, load_policies
from flowlens.store import Store
from tests.ingest import helpers

EXAMPLES = 25
SEEDS: dict[str, dict[str, Any]] = {
    "enterprise": json.loads(helpers.EXAMPLE_C),
    "elasticsearch": {"_id": "a", "_index": "flows", "_source": json.loads(helpers.EXAMPLE_C)},
    "goldmane": json.loads(helpers.GOLDMANE_EXAMPLE),
    "whisker": dict(helpers.WHISKER_ITEM),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def a_line(draw: st.DrawFn, fmt: str) -> bytes:
    """One line: a record of ``fmt`` with some fields changed, dropped or added, or junk."""
    kind = draw(st.sampled_from(["record", "record", "record", "bytes", "deep", "blank"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120)).replace(b"\n", b" ")
    if kind == "deep":
        depth = draw(st.integers(min_value=60, max_value=5000))
        return b'{"start_time":' + b"[" * depth + b"]" * depth + b"}"
    if kind == "blank":
        return b""
    record = json.loads(json.dumps(SEEDS[fmt]))
    target = record["_source"] if fmt == "elasticsearch" else record
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        key = draw(st.sampled_from(sorted(target)) | st.text(max_size=8))
        if draw(st.booleans()):
            target[key] = draw(json_values)
        else:
            target.pop(key, None)
    return json.dumps(record).encode()


@st.composite
def a_flow_log(draw: st.DrawFn) -> tuple[str, list[bytes], bool, bool]:
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    lines = draw(st.lists(a_line(fmt), min_size=1, max_size=12))
    return fmt, lines, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_flow_log())
# The same hit twice, the file cut after the first: the second run finds the repeat stored by id.
@example(("elasticsearch", [json.dumps(SEEDS["elasticsearch"]).encode()] * 2, False, True))
def test_any_flow_log_is_accounted_for_line_by_line_and_only_flowlens_errors_escape(
    case: tuple[str, list[bytes], bool, bool],
) -> None:
    fmt, lines, compressed, cut = case
    data = b"".join(line + b"\n" for line in lines)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        path = Path(tmp) / ("flows.log.gz" if compressed else "flows.log")
        blob = gzip.compress(data) if compressed else data
        path.write_bytes(blob[: len(blob) * 2 // 3] if cut else blob)
        options = IngestOptions(format=fmt, max_line_bytes=4096)
        try:
            first = ingest(store, [str(path)], options)
        except FlowlensError:
            return
        assert first.balanced
        (fs,) = first.files
        if not cut:
            assert fs.error is None
            assert fs.lines_read == len(lines)
        path.write_bytes(gzip.compress(data) if compressed else data)  # the whole file arrives
        second = ingest(store, [str(path)], options)
        assert second.balanced
        assert second.total("lines_read") == len(lines)
        # every line once over both runs: what the first run consumed is skipped by the second, and
        # so is an Elasticsearch hit whose document (same id, same content) the first run stored
        already = second.total("already_stored")
        assert second.total("skipped") == first.total("lines_read") + already
        assert already == 0 or fmt == "elasticsearch"


yaml_text = st.text(
    alphabet=st.sampled_from([*"ab:-[]{}&*!|>'\" \n\t#,?%@`0123456789", "\u2028", "é"]),
    max_size=200,
)


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text, st.sampled_from(["policies", "inventory"]))
def test_any_manifest_loads_or_fails_with_a_policy_error_of_one_short_line(text: str, what: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            (load_policies if what == "policies" else load_inventory)([path])
        except PolicyError as exc:
            assert len(str(exc)) < 1500
