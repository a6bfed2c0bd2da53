"""What a benchmark ran on, for its JSON line: CPU, cores, load, and how fast its disk syncs.

Figures from two machines (or two moments of one loaded machine) are only comparable with this
beside them: the relay and KME figures are bounded by synchronous commits, so the fsync latency
of the data directory matters as much as the CPU.
"""

from __future__ import annotations

import os
import pathlib
import platform
import tempfile
import time

from qkdnet.orchestrator.stats import percentile

FSYNC_PROBES = 100


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fsync_latency_ms(directory: pathlib.Path) -> dict[str, float | None]:
    """p50 and p99 of writing 4 KiB and fsyncing it, in ``directory``."""
    samples = []
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-probe-") as probe:
        for _ in range(FSYNC_PROBES):
            probe.write(b"\0" * 4096)
            probe.flush()
            started = time.perf_counter()
            os.fsync(probe.fileno())
            samples.append(1000 * (time.perf_counter() - started))
    return {"p50": _round(percentile(samples, 0.5)), "p99": _round(percentile(samples, 0.99))}


def describe(data_dir: pathlib.Path | str | None = None) -> dict:
    """The machine now: call it before the measurement (the load average it reports is the load
    the benchmark started under)."""
    directory = pathlib.Path(data_dir or tempfile.gettempdir())
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "fsync_ms": fsync_latency_ms(directory), "data_dir": str(directory), "python": platform.python_version()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
