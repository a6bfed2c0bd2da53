"""The link engine is sans-I/O: no networking, event loop or clock anywhere in node/qkd.

Locks are allowed (``threading``): they are not I/O, and the few objects blocks of one link
share (authentication keys, Cascade's shuffles) take them so that blocks can run in threads."""

import ast
import pathlib

FORBIDDEN = {"grpc", "asyncio", "socket", "time", "datetime", "subprocess", "concurrent"}
PACKAGE = pathlib.Path(__file__).parents[3] / "node" / "qkd"


def test_no_io_imports_in_the_kernel_package():
    offenders = []
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [(path.name, n) for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
