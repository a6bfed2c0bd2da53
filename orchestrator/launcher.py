"""Starting node processes: forked from a pre-imported launcher, or exec'd one by one.

Layer: orchestrator process management. A fresh Python interpreter per node spends ~0.6 s of
CPU importing numpy, grpc and aiohttp; on two cores that alone made a 100-node boot take 45 s.
``ForkLauncher`` pays it once: ``python -m qkdnet.node.zygote`` imports everything and forks a child per
node. Each child is still its own OS process with its own pid, pipes and gRPC server.
``ExecLauncher`` is the plain way, kept for platforms without fork.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
from typing import Protocol

from qkdnet.orchestrator.errors import NodeFailure


class NodeProcess(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader: ...

    @property
    def stderr(self) -> asyncio.StreamReader: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    async def spawn(self, argv: list[str]) -> NodeProcess: ...
    async def close(self) -> None: ...


def _node_env() -> dict[str, str]:
    # GRPC_VERBOSITY: a refused TLS handshake (a caller without the right certificate) is not
    # worth a line on every node's stderr.
    return dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                GRPC_VERBOSITY=os.environ.get("GRPC_VERBOSITY", "ERROR"))


class ExecLauncher:
    async def spawn(self, argv: list[str]) -> NodeProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qkdnet.node", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_node_env())
        return ExecProcess(process)

    async def close(self) -> None:
        pass


class ExecProcess:
    """An exec'd node: ``asyncio.subprocess.Process`` with its pipes known to be there."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        if process.stdout is None or process.stderr is None:
            raise NodeFailure("a node process was started without its stdout and stderr pipes")
        self._process = process
        self.stdout: asyncio.StreamReader = process.stdout
        self.stderr: asyncio.StreamReader = process.stderr

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        return await self._process.wait()

    def kill(self) -> None:
        self._process.kill()


class ForkedProcess:
    """The parts of ``asyncio.subprocess.Process`` the orchestrator uses, for a forked node."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, stderr: asyncio.StreamReader) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    def _set_exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        return -1 if self.returncode is None else self.returncode

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


async def _pipe_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader


class ForkLauncher:
    def __init__(self) -> None:
        self._zygote: ExecProcess | None = None
        self._orders: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            zygote = ExecProcess(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "qkdnet.node.zygote", str(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_node_env()))
        finally:
            theirs.close()
        self._zygote, self._orders = zygote, ours
        line = await zygote.stdout.readline()
        if not line:
            err = (await zygote.stderr.read()).decode(errors="replace").strip().splitlines()
            raise NodeFailure(f"node launcher failed to start: {err[-1] if err else 'no output'}")
        self._reader = asyncio.create_task(self._read_reports(zygote.stdout))

    async def _read_reports(self, reports: asyncio.StreamReader) -> None:
        async for raw in reports:
            report = json.loads(raw)
            if "exited" in report:
                child = self._children.pop(report["exited"], None)
                if child is None:
                    self._early_exits[report["exited"]] = report["code"]
                else:
                    child._set_exit(report["code"])
            else:
                future = self._pending.pop(report.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(report)
        # The launcher is gone; its children died with it (PDEATHSIG).
        for child in self._children.values():
            child._set_exit(-signal.SIGTERM)
        self._children.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NodeFailure("node launcher exited"))

    async def spawn(self, argv: list[str]) -> NodeProcess:
        if self._orders is None:
            await self.start()
        orders = self._orders
        if orders is None:
            raise NodeFailure("node launcher is not running")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        order_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[order_id] = future
        try:
            socket.send_fds(orders, [json.dumps({"id": order_id, "argv": argv}).encode()], [out_w, err_w])
        except OSError as exc:
            self._pending.pop(order_id, None)
            for fd in (out_r, err_r):
                os.close(fd)
            raise NodeFailure(f"node launcher unreachable: {exc}") from None
        finally:
            os.close(out_w)
            os.close(err_w)
        report = await future
        if "error" in report:
            raise NodeFailure(f"node launcher refused: {report['error']}")
        child = ForkedProcess(report["pid"], await _pipe_reader(out_r), await _pipe_reader(err_r))
        if child.pid in self._early_exits:
            child._set_exit(self._early_exits.pop(child.pid))
        else:
            self._children[child.pid] = child
        return child

    async def close(self) -> None:
        if self._orders is not None:
            self._orders.close()
            self._orders = None
        if self._zygote is not None:
            try:
                await asyncio.wait_for(self._zygote.wait(), 5)
            except TimeoutError:
                self._zygote.kill()
                await self._zygote.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


def default_launcher() -> Launcher:
    """Fork where the platform can; ``QKDNET_LAUNCHER=exec`` forces one interpreter per node."""
    if os.environ.get("QKDNET_LAUNCHER", "fork") == "exec" or not hasattr(os, "fork"):
        return ExecLauncher()
    return ForkLauncher()
