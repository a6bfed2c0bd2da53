"""Where a network started by ``qkdnet up`` is found: a state directory and its control socket.

Layer: control plane (files only; ``orchestrator.supervisor_client`` talks to the supervisor).
``network.json`` names the supervisor's pid, socket and node addresses;
it is written atomically and removed on ``down``. A stale file (its pid gone) counts as no
network, so a crashed supervisor never blocks the next ``up``.
"""

from __future__ import annotations

import json
import os
import pathlib

from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.files import write_json

STATE_ENV = "QKDNET_STATE_DIR"


def default_state_dir() -> pathlib.Path:
    if os.environ.get(STATE_ENV):
        return pathlib.Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or pathlib.Path.home() / ".local" / "state"
    return pathlib.Path(base) / "qkdnet"


class StateDir:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    @property
    def file(self) -> pathlib.Path:
        return self.path / "network.json"

    @property
    def socket_path(self) -> pathlib.Path:
        return self.path / "control.sock"

    @property
    def log_path(self) -> pathlib.Path:
        return self.path / "supervisor.log"

    def prepare(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise QkdnetError(f"{self.path}: cannot create state directory ({exc.strerror})") from None
        if len(str(self.socket_path).encode()) > 100:
            raise QkdnetError(f"{self.path}: path too long for a Unix socket; choose a shorter --state-dir")
        self.socket_path.unlink(missing_ok=True)

    def write(self, data: dict) -> None:
        write_json(self.file, data, 0o600)

    def read(self) -> dict | None:
        """The running network's record, or None when there is none (or only a stale one)."""
        try:
            data = json.loads(self.file.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        pid = data.get("pid")
        if not isinstance(pid, int) or not process_alive(pid):
            return None
        return data

    def clear(self) -> None:
        self.file.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """True while pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
