"""A pre-imported launcher that forks node processes, so a hundred nodes boot in seconds.

Layer: node process management; no asyncio and no gRPC object is ever created here, so that
a fork is clean. It imports everything a node needs once (numpy, gmpy2, grpc, aiohttp, the
node modules), then waits for orders on a Unix socket: each order carries the node's argument
list and, as passed file descriptors, the pipes that become the child's stdout and stderr. A
forked child is a full, separate OS process running ``node.server.main``; the launcher only
reaps children and reports their exit codes, one JSON line each on its stdout.

It dies with the orchestrator, and every node dies with it (PR_SET_PDEATHSIG on both).
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import sys
import traceback

MAX_ORDER_BYTES = 1 << 16


def _preload() -> None:
    from qkdnet.node.qkd.compiled import warm_up

    warm_up()  # every node forked from here starts with the link engine's kernels loaded
    import qkdnet.node.key_service  # noqa: F401
    import qkdnet.node.kme.api  # noqa: F401
    import qkdnet.node.server  # noqa: F401

    # The imported modules live as long as a node does: the collector need not scan them again
    # in every child (shorter full collections, and the pages stay shared after the fork).
    gc.collect()
    gc.freeze()


def _child(argv: list[str], out_fd: int, err_fd: int, control: socket.socket, wakeup_r: int) -> None:
    """In the forked child: become the node. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        os.close(wakeup_r)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from qkdnet.node.server import main

        sys.argv = ["python -m qkdnet.node", *argv]
        code = main(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    except BaseException:  # the node crashed: say why on its stderr, like an exec'd interpreter would
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _report(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(control: socket.socket) -> None:
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "order")
    selector.register(wakeup_r, selectors.EVENT_READ, "signal")
    _report({"event": "ready", "pid": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.data == "signal":
                os.read(wakeup_r, 4096)
                _reap()
                continue
            data, fds, _, _ = socket.recv_fds(control, MAX_ORDER_BYTES, 2)
            if not data:
                return  # the orchestrator closed its end: it is done with us
            order = json.loads(data)
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                _report({"id": order.get("id"), "error": "an order must pass stdout and stderr"})
                continue
            pid = os.fork()
            if pid == 0:
                _child(order["argv"], fds[0], fds[1], control, wakeup_r)
            for fd in fds:
                os.close(fd)
            _report({"id": order["id"], "pid": pid})


def main() -> int:
    from qkdnet.node.server import die_with_parent

    fd = int(sys.argv[1])
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator decides when the launcher ends
    _preload()
    control = socket.socket(fileno=fd)
    try:
        serve(control)
    finally:
        control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
