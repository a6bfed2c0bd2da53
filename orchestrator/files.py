"""Writing result and state files whole: a reader never sees half a file, a crash leaves the old one.

Layer: control plane utility. The data goes to a temporary file beside the target, which then
replaces it in one rename; a failure is a one-line ``QkdnetError`` naming the file.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from qkdnet.orchestrator.errors import QkdnetError


def write_atomically(path: pathlib.Path, data: str | bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    raw = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise QkdnetError(f"{path}: cannot write ({exc.strerror})") from None


def write_json(path: pathlib.Path, data: Any, mode: int = 0o644) -> None:
    write_atomically(path, json.dumps(data, indent=2) + "\n", mode)
