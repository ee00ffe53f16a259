"""The generated Goldmane modules are what tools/generate_proto.py makes of the proto, byte for
byte, and flowlens imports and runs without grpc (the ``collect`` extra is optional)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "flowlens" / "collect" / "proto"


def test_regenerating_the_modules_gives_the_same_bytes(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_proto.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("goldmane_pb2.py", "goldmane_pb2.pyi", "goldmane_pb2_grpc.py"):
        made = tmp_path / "flowlens" / "collect" / "proto" / name
        assert made.read_bytes() == (PROTO_DIR / name).read_bytes(), f"{name} differs: run make proto"


def test_the_proto_names_its_origin_and_licence_and_is_calicos_from_the_syntax_line_on():
    text = (PROTO_DIR / "goldmane.proto").read_text()
    start = text.index('\nsyntax = "proto3";')
    header = text[:start]
    assert "projectcalico/calico" in header and "Apache License, Version 2.0" in header
    assert "87c15906f20c4ca1fda55af92295e7678b0cc0b2" in header
    body = text[start:]
    assert "service Flows {" in body and "rpc Stream(FlowStreamRequest) returns (stream FlowResult);" in body


_BLOCK_GRPC = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" or name.startswith(("grpc.", "google.protobuf")) or name == "google":
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""


def test_flowlens_imports_and_serves_without_grpc_and_says_how_to_get_the_goldmane_client():
    code = _BLOCK_GRPC + (
        "import flowlens, flowlens.collect, flowlens.collect.receiver, flowlens.collect.http, flowlens.cli\n"
        "from flowlens.errors import CollectError\n"
        "from flowlens.collect.goldmane import load_grpc\n"
        "try:\n"
        "    load_grpc()\n"
        "except CollectError as exc:\n"
        "    assert \"pip install 'flowlens[collect]'\" in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('grpc was not blocked')\n"
        "assert 'grpc' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
