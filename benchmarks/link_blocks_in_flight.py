"""Benchmark: one link run as a node runs it, with several blocks under way at once.

The standard link, as fast as the host allows (time scale 0), with
``ProcessingParams.blocks_in_flight`` = ``--blocks-in-flight``. By default both ends are
``LinkRuntime``s in this process (the transmitter calls the receiver directly, no gRPC), so
they share one interpreter lock; with ``--nodes`` they are two node processes started by the
orchestrator, talking gRPC over mutual TLS, as a network runs them (each has its own lock, and
blocks in flight overlap one block's wait for the peer with another's work). Both ends share
this host's cores either way; on two hosts each end has its own.

After ``--warmup-blocks`` blocks (the first runs alone: it resynchronises the link; kernels load,
Cascade's shuffles are computed), it times the next ``--blocks`` blocks to end at the
transmitter. ``realtime_factor`` is their emulated link seconds per wall second. Peak RSS is the
whole process's (both ends, every block in flight; with ``--nodes`` the controller's only, so
it is left out). Prints one line per second of progress and a final JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import pathlib
import resource
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable

import numpy as np
from machine import describe

from qkdnet.node.keystore.link_pool import LinkKeyPool
from qkdnet.node.link_runtime import FrameForPeer, LinkRuntime, Resync
from qkdnet.node.qkd.params import MAX_BLOCKS_IN_FLIGHT, RECONCILERS, STANDARD, ProcessingParams
from qkdnet.node.settings import LinkSettings, Role
from qkdnet.node.status import LinkStatus
from qkdnet.orchestrator.network import Network
from qkdnet.orchestrator.topology import load

POOL_BITS = 10**12  # never full: generation must not pause


class DirectPeer:
    """The transmitter's view of the receiver: its runtime, called in this process."""

    def __init__(self, receiver: LinkRuntime) -> None:
        self.receiver = receiver

    async def deliver_frame(self, frame: FrameForPeer) -> tuple[list[bytes], bool]:
        return await self.receiver.on_frame(frame), False

    async def exchange(self, link_id: str, frame_id: int, envelopes: list[bytes]) -> tuple[list[bytes], bool]:
        return await self.receiver.on_exchange(frame_id, envelopes)

    async def resync(self, request: Resync) -> Resync:
        return await self.receiver.on_resync(request)


def _ends(processing: ProcessingParams, seed: int) -> tuple[LinkRuntime, LinkRuntime]:
    tx = LinkSettings(link_id="A~B", peer="B", peer_address="direct", role=Role.TRANSMITTER, params=STANDARD,
                      processing=processing, bootstrap_secret=secrets.token_bytes(4096),
                      pool_capacity_bits=POOL_BITS, seed=seed)
    rx = dataclasses.replace(tx, peer="A", role=Role.RECEIVER)
    return LinkRuntime(tx, LinkKeyPool("a", POOL_BITS), 0.0), LinkRuntime(rx, LinkKeyPool("b", POOL_BITS), 0.0)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _same_keys(sender: LinkKeyPool, receiver: LinkKeyPool) -> bool:
    """Whether both ends hold the same key: pads from every block, taken by ID at the receiver."""
    if sender.generated_bits != receiver.generated_bits:
        return False
    count = sender.sendable_bits * 3 // 4 // 1024
    if count == 0:
        return sender.generated_bits == 0
    pads, bits = sender.allocate_many([1024] * count)
    return bool(np.array_equal(np.concatenate([receiver.take_by_id(pad) for pad in pads]), bits))


async def _timed(link: Callable[[], Awaitable[LinkStatus]], args: argparse.Namespace,
                 begun: float) -> tuple[LinkStatus, LinkStatus, float, float]:
    """The transmitter's status after the warm-up blocks and after the timed ones, with the wall
    and CPU seconds (this process's) between them (a benchmark may poll)."""
    async def ended(blocks: int) -> LinkStatus:
        last_print = time.monotonic()
        while (s := await link()).blocks_accepted + s.blocks_aborted < blocks:
            await asyncio.sleep(0.05)
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                print(f"{last_print - begun:7.1f} s: {s.blocks_accepted} accepted, {s.blocks_aborted} aborted, "
                      f"{s.open_blocks} open", flush=True)
        return s

    first = await ended(args.warmup_blocks)
    started, cpu_from = time.monotonic(), _cpu_s()
    last = await ended(first.blocks_accepted + first.blocks_aborted + args.blocks)
    return first, last, time.monotonic() - started, _cpu_s() - cpu_from


def _report(args: argparse.Namespace, ends: str, first: LinkStatus, last: LinkStatus, wall: float) -> dict:
    emulated = last.emulated_seconds - first.emulated_seconds
    return {
        "reconciler": args.reconciler, "blocks_in_flight": args.blocks_in_flight, "ends": ends,
        "warmup_blocks": args.warmup_blocks,
        "blocks": last.blocks_accepted + last.blocks_aborted - first.blocks_accepted - first.blocks_aborted,
        "detections_per_block": args.detections, "accepted_blocks_total": last.blocks_accepted,
        "aborted_blocks_total": last.blocks_aborted, "resyncs": last.resyncs,
        "emulated_link_seconds": round(emulated, 3), "wall_seconds": round(wall, 2),
        "realtime_factor": round(emulated / wall, 4),
        "sifted_bits_per_s": round((last.sifted_bits - first.sifted_bits) / wall),
        "net_secret_bits_per_s": round((last.generated_bits - first.generated_bits) / wall),
    }


TOPOLOGY = """
name: blocks-in-flight
defaults: {{preset: standard, p_z_alice: 0.9, p_z_bob: 0.9}}  # the preset as STANDARD (topologies default to 0.5)
processing: {{block_detections: {detections}, reconciler: {reconciler}, blocks_in_flight: {in_flight}}}
pool_capacity_bits: {capacity}
time_scale: 0
nodes: [A, B]
links:
  - {{source: A, target: B, length_km: 50}}
"""
NODES_POOL_BITS = 10**10  # the nodes' pools (kept on disk too): far more than a run makes


async def run_nodes(args: argparse.Namespace) -> dict:
    """Both ends in node processes: progress from the transmitter's status, over gRPC."""
    with tempfile.TemporaryDirectory(prefix="qkdnet-bif-") as directory:
        path = pathlib.Path(directory) / "topology.yaml"
        path.write_text(TOPOLOGY.format(detections=args.detections, reconciler=args.reconciler,
                                        in_flight=args.blocks_in_flight, capacity=NODES_POOL_BITS))
        topology = load(str(path))
        if topology.links[0].params != STANDARD:
            raise RuntimeError("the benchmark's topology does not give the standard link")
        network = Network(topology, time_scale=0, seed=args.seed, data_dir=pathlib.Path(directory) / "data")
        await network.start()
        try:
            async def link() -> LinkStatus:
                status = (await network.status())["A"]
                if status is None:
                    raise RuntimeError("node A did not answer its status")
                return status.links[0]

            first, last, wall, _ = await _timed(link, args, time.monotonic())
        finally:
            await network.stop()
    return _report(args, "two node processes", first, last, wall)


async def run(args: argparse.Namespace) -> dict:
    processing = ProcessingParams(block_detections=args.detections, reconciler=args.reconciler,
                                  blocks_in_flight=args.blocks_in_flight)
    tx, rx = _ends(processing, args.seed)
    begun = time.monotonic()
    tx.start(DirectPeer(rx))

    async def link() -> LinkStatus:
        return tx.status()

    try:
        first, last, wall, cpu = await _timed(link, args, begun)
        report = _report(args, "one process", first, last, wall)
        report["cores_busy"] = round(cpu / wall, 2)  # CPU seconds of this process (both ends) per wall second
    finally:
        await tx.stop()
    report["keys_identical_at_both_ends"] = _same_keys(tx.pool, rx.pool)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks-in-flight", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=8, help="timed blocks")
    parser.add_argument("--warmup-blocks", type=int, default=2, help="untimed blocks first (at least 1)")
    parser.add_argument("--detections", type=int, default=ProcessingParams().block_detections)
    parser.add_argument("--reconciler", choices=RECONCILERS, default="cascade")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", action="store_true", help="the two ends in two node processes, over gRPC")
    args = parser.parse_args()
    if not 1 <= args.blocks_in_flight <= MAX_BLOCKS_IN_FLIGHT:
        parser.error(f"--blocks-in-flight must be from 1 to {MAX_BLOCKS_IN_FLIGHT}")
    if args.blocks < 1 or args.warmup_blocks < 1:
        parser.error("--blocks and --warmup-blocks must be at least 1")
    report = asyncio.run(run_nodes(args) if args.nodes else run(args))
    report["machine"] = describe()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
