"""The one client of a running ``qkdnet up`` supervisor, for the CLI and the shell alike.

Layer: control plane. One JSON object per line each way over the supervisor's Unix socket;
this module is the only one that builds requests or reads replies, and it returns typed
results. A reply the supervisor marks invalid (the request was wrong) raises ``QkdnetError``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.status import KeyEntry
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.state import StateDir
from qkdnet.orchestrator.summary import NetworkStatus, key_entry_from_json

REQUEST_TIMEOUT_S = 120.0


class SupervisorClient:
    def __init__(self, state: StateDir, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.state = state
        self.timeout_s = timeout_s

    def status(self) -> NetworkStatus:
        return NetworkStatus.from_json(self._request({"op": "status"})["status"])

    def relay(self, source: str, destination: str, count: int = 1, key_bits: int = 256, timeout_s: float = 30.0,
              strategy: str = "fewest_hops", strategy_options: dict[str, Any] | None = None) -> RelayResult:
        reply = self._request({"op": "relay", "source": source, "destination": destination, "count": count,
                               "key_bits": key_bits, "timeout_s": timeout_s, "strategy": strategy,
                               "strategy_options": strategy_options or {}})
        return RelayResult.from_json(reply["result"])

    def keys(self, node: str, peer: str = "") -> list[KeyEntry]:
        reply = self._request({"op": "keys", "node": node, "peer": peer})
        return [key_entry_from_json(k) for k in reply["keys"]]

    def revoke(self, node: str, key_ids: list[str], reason: str) -> list[str]:
        return list(self._request({"op": "revoke", "node": node, "key_ids": key_ids, "reason": reason})["revoked"])

    def fault(self, kind: str, u: str, v: str, impairment: dict[str, Any] | None = None) -> str:
        """Cut, restore or impair link u-v; what the network says it did."""
        request: dict[str, Any] = {"op": "fault", "kind": kind, "link": [u, v]}
        if impairment is not None:
            request["impairment"] = impairment
        return str(self._request(request)["fault"])

    def node_fault(self, kind: str, node: str) -> str:
        """Kill a node (SIGKILL) or restart a killed one from its key store."""
        return str(self._request({"op": "fault", "kind": kind, "node": node})["fault"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._request({"op": "faults"})["faults"])

    def down(self) -> None:
        self._request({"op": "down"})

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.state.read() is None:
            raise QkdnetError(f"no network is up (state directory {self.state.path}); start one with `qkdnet up`")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(str(self.state.socket_path))
                sock.sendall(json.dumps(payload).encode() + b"\n")
                line = sock.makefile("rb").readline()
        except OSError as exc:
            raise QkdnetError(f"cannot reach the network supervisor at {self.state.socket_path}: {exc}") from None
        if not line:
            raise QkdnetError("the network supervisor closed the connection")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise QkdnetError(reply.get("error") or "the network supervisor refused the request")
        return reply
