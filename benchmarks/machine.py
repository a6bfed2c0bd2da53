"""What a benchmark ran on, for its JSON line: CPU, cores, load, and how fast its disk syncs.

Figures from two machines (or two moments of one loaded machine) are only comparable with this
beside them: the relay and KME figures are bounded by synchronous commits, so the fsync latency
of the data directory matters as much as the CPU.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import platform
import ssl
import tempfile
import time

import aiohttp

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


class CpuMeter:
    """CPU time of this benchmark's child processes (the nodes, threads included) and the host's
    steal time over one measured span.

    Wall-clock rates on a shared VM swing by tens of percent between runs; CPU time per unit of
    work is what a code change moves, and the steal share shows when the host took the CPUs away.
    """

    def __init__(self) -> None:
        self._nodes_s = _descendants_cpu_s(os.getpid())
        self._host = host_ticks()

    def per(self, units: int) -> dict[str, float | None]:
        """``node_cpu_ms`` per unit of work since the meter started, and ``steal_pct`` of that span."""
        nodes_s = _descendants_cpu_s(os.getpid()) - self._nodes_s
        host = [now - then for now, then in zip(host_ticks(), self._host, strict=True)]
        total, steal = sum(host), host[7] if len(host) > 7 else 0
        return {"node_cpu_ms": round(1000 * nodes_s / units, 3) if units else None,
                "steal_pct": round(100 * steal / total, 1) if total else None}


def host_ticks() -> list[int]:
    """The host's CPU ticks by kind (user, nice, system, idle, iowait, irq, softirq, steal, ...)."""
    try:
        return [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return [0] * 8


def _descendants_cpu_s(root: int) -> float:
    """User and system seconds of every living descendant of ``root`` (from /proc; Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[tuple[int, float]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append((int(entry), (int(fields[11]) + int(fields[12])) / tick))
    total, pending = 0.0, [root]
    while pending:
        for pid, cpu_s in children.get(pending.pop(), []):
            total += cpu_s
            pending.append(pid)
    return total


class Scraper:
    """What Prometheus does to a running network: every ``interval_s`` it GETs every node's
    /metrics over mutual TLS with the monitor identity (a no-op for an interval of 0).

    Like Prometheus, it holds its connections: one unmeasured round on entry opens them (the
    TLS handshakes), and the first measured round comes half an interval later, so a measured
    stretch of T seconds sees about T / ``interval_s`` rounds, not a burst of handshakes at its
    start. A stretch much shorter than the interval therefore sees no scrape at all: compare
    only levels that last several intervals.
    """

    def __init__(self, network, interval_s: float) -> None:
        self.network = network
        self.interval_s = interval_s
        self.scrapes = 0
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self._urls = [h.metrics_url for h in network.nodes.values() if h.metrics_url]

    async def __aenter__(self) -> Scraper:
        if self.interval_s > 0:
            certs = self.network.certs
            context = ssl.create_default_context(cafile=str(certs.ca_file))
            context.load_cert_chain(*map(str, certs.monitor or certs.controller))
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
            await self._round()
            self.scrapes = 0  # the warm-up round is not part of what is measured
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _round(self) -> None:
        if self._session is None:
            raise RuntimeError("the scraper's session is opened on entry")
        for url in self._urls:
            async with self._session.get(url) as reply:
                await reply.read()
                if reply.status != 200:
                    raise SystemExit(f"scrape of {url}: HTTP {reply.status}")
            self.scrapes += 1

    async def _run(self) -> None:
        await asyncio.sleep(self.interval_s / 2)
        while True:
            started = time.monotonic()
            await self._round()
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))


async def levels_with_and_without_scraper(network, levels: list[int], scrape_every_s: float,
                                          run_level) -> tuple[list[dict], list[dict]]:
    """``run_level(concurrency)`` for each level, and again under a ``Scraper`` when
    ``scrape_every_s`` > 0 (which of the two goes first alternates from level to level, so a
    drift over the run does not favour either). Returns (plain, scraped)."""
    plain: list[dict] = []
    scraped: list[dict] = []
    for index, concurrency in enumerate(levels):
        order = [False] if scrape_every_s <= 0 else [False, True] if index % 2 == 0 else [True, False]
        for scrape in order:
            async with Scraper(network, scrape_every_s if scrape else 0.0) as scraper:
                level = await run_level(concurrency)
            if scrape:
                scraped.append({**level, "scrapes": scraper.scrapes})
            else:
                plain.append(level)
    return plain, scraped
