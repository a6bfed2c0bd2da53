"""Named places where a crash test can hold a node still; inert unless its environment asks.

A crash test must kill a node at one exact place (say, after the destination stored a relayed
key and before the source committed it) on every run, not when a signal happens to land there.
``QKDNET_HOLD_AT=POINT@N:MARKER`` in a node's environment makes the N-th arrival at POINT, and
every later one, create the file MARKER and wait there for ever; the test waits for MARKER and
kills the process. Without the variable ``reached`` returns at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ENV_VAR = "QKDNET_HOLD_AT"
SOURCE_COMMIT = "source-commit"  # every share of a relay arrived; the source has not committed
POINTS = (SOURCE_COMMIT,)

_arrivals: dict[str, int] = {}


def _parse(setting: str) -> tuple[str, int, Path]:
    where, sep, marker = setting.partition(":")
    point, _, nth = where.partition("@")
    if not sep or not marker or point not in POINTS or not (nth or "1").isdigit() or int(nth or "1") < 1:
        print(f"{ENV_VAR} must be POINT[@N]:MARKER with POINT one of {', '.join(POINTS)}", file=sys.stderr)
        raise SystemExit(2)
    return point, int(nth or "1"), Path(marker)


_HOLD = _parse(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None


async def reached(point: str) -> None:
    """Hold here for ever if the environment asked for this point and its arrival is due."""
    if _HOLD is None or _HOLD[0] != point:
        return
    _arrivals[point] = _arrivals.get(point, 0) + 1
    if _arrivals[point] >= _HOLD[1]:
        _HOLD[2].touch()
        await asyncio.Event().wait()
