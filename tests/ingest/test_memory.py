"""The memory pool ingest allocates from: the system allocator while a parser is open, the pool
before it afterwards, and a pool the process chose itself left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.ingest import IngestOptions, ingest, parse
from flowlens.ingest.memory import POOL_VARIABLE, IngestMemory, ingest_pool, keep_chosen_pool
from flowlens.ingest.parse import BatchParser
from flowlens.store import Store
from tests.ingest.helpers import EXAMPLE_C


def test_a_parser_allocates_from_the_system_pool_and_the_last_one_closed_restores_the_pool():
    before = pa.default_memory_pool().backend_name
    first = BatchParser(IngestOptions(), lambda parsed: None)
    second = BatchParser(IngestOptions(), lambda parsed: None)
    try:
        assert pa.default_memory_pool().backend_name == "system"
        first.close()
        assert pa.default_memory_pool().backend_name == "system"  # the second is still open
    finally:
        second.close()
    assert pa.default_memory_pool().backend_name == before
    memory = IngestMemory()
    memory.close()
    memory.close()  # (a second close changes nothing)
    assert pa.default_memory_pool().backend_name == before


def test_a_pool_chosen_by_the_process_is_left_alone():
    keep_chosen_pool()
    try:
        before = pa.default_memory_pool()
        memory = IngestMemory()
        try:
            assert pa.default_memory_pool().backend_name == before.backend_name
        finally:
            memory.close()
        assert pa.default_memory_pool().backend_name == before.backend_name
    finally:
        keep_chosen_pool(False)


def test_a_default_pool_other_than_mimalloc_is_left_alone():
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        assert ingest_pool() is None
    finally:
        pa.set_memory_pool(before)


def test_the_command_keeps_the_pool_the_environment_names(tmp_path):
    # (a process of its own: the command reads Arrow's variable when it starts)
    code = (
        "import sys; sys.argv = ['flowlens', 'version']\n"
        "import flowlens.cli, flowlens.ingest.memory as m\n"
        "try:\n    flowlens.cli.main()\nexcept SystemExit:\n    pass\n"
        "print(m.ingest_pool() is None)\n"
    )
    for value, kept in (("mimalloc", "True"), ("", "False")):
        env = {**os.environ, POOL_VARIABLE: value}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip().splitlines()[-1] == kept, out.stderr


def test_ingest_allocates_from_the_system_pool_and_restores_the_default_after(tmp_path, monkeypatch):
    before = pa.default_memory_pool().backend_name
    seen: list[str] = []
    parse_batch = parse.BatchParser._parse

    def parse_and_note(self, batch):  # type: ignore[no-untyped-def]
        seen.append(pa.default_memory_pool().backend_name)
        return parse_batch(self, batch)

    monkeypatch.setattr(parse.BatchParser, "_parse", parse_and_note)
    good = json.loads(EXAMPLE_C)
    log = tmp_path / "flows.log"
    log.write_text("".join(json.dumps({**good, "bytes_in": n}) + "\n" for n in range(20)))
    store = Store(tmp_path / "store")
    assert ingest(store, [str(log)]).total("rows") == 20
    assert seen == ["system"]
    assert pa.default_memory_pool().backend_name == before
    (path,) = store.flow_files()
    assert sorted(pq.read_table(path)["bytes_in"].to_pylist()) == list(range(20))
