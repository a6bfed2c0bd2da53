"""Layering: the domain imports no transport, and no import runs back up the stack.

node/qkd is sans-I/O (tests/node/qkd/test_sans_io.py); the rest of the node's domain (trusted
node, links, relay engine, key store, routing, key service) imports neither gRPC nor aiohttp:
only node/rpc, node/kme and the process entry points (server, zygote, the health probe) touch
transports. The node
never imports the orchestrator.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).parents[1]
ADAPTERS = {"node/server.py", "node/zygote.py", "node/__main__.py", "node/probe.py"}
ADAPTER_PACKAGES = ("node/rpc/", "node/kme/", "node/web/")
TRANSPORTS = {"grpc", "grpc_health", "aiohttp", "qkdnet_proto"}


def _top(module: str) -> str:
    """The package a module belongs to: ``grpc`` for ``grpc.aio``, ``node`` for ``qkdnet.node.x``."""
    parts = module.split(".")
    return parts[1] if parts[0] == "qkdnet" and len(parts) > 1 else parts[0]


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {_top(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(_top(node.module))
    return names


def _node_modules():
    for path in sorted((ROOT / "node").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path


def test_the_node_domain_imports_no_transport():
    offenders = [(name, sorted(_imports(path) & TRANSPORTS)) for name, path in _node_modules()
                 if name not in ADAPTERS and not name.startswith(ADAPTER_PACKAGES) and _imports(path) & TRANSPORTS]
    assert offenders == []


def test_the_node_never_imports_the_orchestrator():
    assert [name for name, path in _node_modules() if "orchestrator" in _imports(path)] == []
