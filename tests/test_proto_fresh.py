"""The committed generated protobuf code matches proto/ (regenerate with proto/generate.sh)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]


def test_generated_code_is_not_stale(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", "proto", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", "proto/qkdnet_proto/v1/node.proto"],
                   cwd=ROOT, check=True)
    for name in ("node_pb2.py", "node_pb2.pyi", "node_pb2_grpc.py"):
        fresh = (tmp_path / "qkdnet_proto" / "v1" / name).read_text()
        committed = (ROOT / "qkdnet_proto" / "v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run proto/generate.sh"
