"""Regenerate the Goldmane gRPC modules of flowlens from flowlens/collect/proto/goldmane.proto.

    python tools/generate_proto.py            # rewrite the committed modules (`make proto`)
    python tools/generate_proto.py OUT_DIR    # write them under OUT_DIR instead (the test does)

It runs protoc from the grpcio-tools version pinned in the ``dev`` extra, so that the modules it
writes are byte for byte the committed ones (tests/collect/test_proto.py checks it). After
raising that pin, run it, commit the modules, and raise the ``collect`` extra's lower bounds to
the grpcio and protobuf versions the new modules name.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = Path("flowlens/collect/proto/goldmane.proto")
OUTPUTS = ("goldmane_pb2.py", "goldmane_pb2.pyi", "goldmane_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Write the generated modules under ``out_root`` (at ``flowlens/collect/proto/``); their paths."""
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(tmp)
        (include / PROTO).parent.mkdir(parents=True)
        shutil.copyfile(ROOT / PROTO, include / PROTO)
        args = [
            "grpc_tools.protoc",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(include / PROTO),
        ]
        (out_root / PROTO).parent.mkdir(parents=True, exist_ok=True)
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    return [out_root / PROTO.parent / name for name in OUTPUTS]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for path in generate(target):
        print(path)
