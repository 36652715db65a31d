"""``serve --processes N``: N API processes on one port (``SO_REUSEPORT``), run by this one.

The parent serves nothing itself. It resolves the database once (starting the embedded
PostgreSQL when ``LEDGERHUB_DSN`` is unset) and reserves the port: a socket bound with
``SO_REUSEPORT`` that never listens, so that ``--port 0`` is resolved once and every child binds
that same port. Each child is ``ledgerhub serve --processes 1`` with the same options and
``SO_REUSEPORT``; the kernel spreads new connections over the children's listening sockets.

Each child appends through its own group commit; the event store's advisory lock (see
``hub.store.events``) keeps positions contiguous and the hash chain whole across processes.
The projection workers (and the sender, the pulls and the health checks) run in child 0 only,
or in none with ``--no-workers``. Every line a child logs carries ``process`` (its index) and
``pid``.

Signals: SIGTERM or SIGINT to the parent is passed to every child as SIGTERM; the parent waits
for them and exits 0 (1 if one of them did not stop cleanly). A child that exits on its own
(crashed, killed) stops the others and the parent exits 1 naming it; a parent killed with -9
takes its children with it (Linux: ``PR_SET_PDEATHSIG``): the supervisor that runs
the parent (systemd, a container runtime) restarts the whole, rather than this process hiding
a crash loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub import logs
from hub.errors import FatalError

READY_FD_ENV = "LEDGERHUB_SERVE_READY_FD"
"""A child writes one line to this inherited pipe once it listens (parent to child only)."""
PROCESS_ENV = "LEDGERHUB_SERVE_PROCESS"
"""A child's index, 0 .. N-1 (parent to child only)."""
PARENT_ENV = "LEDGERHUB_SERVE_PARENT"
"""The parent's pid (parent to child only)."""
_PR_SET_PDEATHSIG = 1
STOP_SECONDS = 30.0
"""How long the parent waits for the children to stop after SIGTERM before it kills them."""

log = logging.getLogger(logs.SERVICE_LOGGER)


@dataclass
class _Child:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[bool]


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` and not listening (connections go
    only to listening sockets): it holds the port, and resolves port 0, for the children."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def child_argv(args: argparse.Namespace, port: int, index: int) -> list[str]:
    """The command line of child ``index``: this ``serve``'s options, on the reserved port."""
    argv = [sys.executable, "-m", "hub"]
    if args.verbose:
        argv.append("-v")
    argv += ["serve", "--host", args.host, "--port", str(port), "--processes", "1"]
    argv.append("--reuse-port")
    if args.no_workers or index > 0:
        argv.append("--no-workers")
    if args.tls_cert is not None:
        argv += ["--tls-cert", str(args.tls_cert), "--tls-key", str(args.tls_key)]
    for network in args.trust_proxy:
        argv += ["--trust-proxy", str(network)]
    return argv


def tell_ready() -> None:
    """In a child of ``serve --processes``: tell the parent that this process now listens."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    with contextlib.suppress(OSError, ValueError):
        os.write(int(fd), b"ready\n")
        os.close(int(fd))


def tag_child() -> None:
    """In a child of ``serve --processes``: name the process on every line it logs, and have
    the kernel send it SIGTERM should the parent die without stopping it (killed with -9)."""
    index = os.environ.get(PROCESS_ENV)
    if index is None:
        return
    logs.tag_process(process=int(index), pid=os.getpid())
    parent = os.environ.get(PARENT_ENV)
    if sys.platform == "linux" and parent is not None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(parent):  # it died before we asked
            os.kill(os.getpid(), signal.SIGTERM)


async def _spawn(argv: Sequence[str], index: int, dsn: str) -> _Child:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    env = {
        **os.environ,
        "LEDGERHUB_DSN": dsn,
        PROCESS_ENV: str(index),
        PARENT_ENV: str(os.getpid()),
        READY_FD_ENV: str(write_fd),
    }
    try:
        process = await asyncio.create_subprocess_exec(*argv, env=env, pass_fds=(write_fd,))
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    ready: asyncio.Future[bool] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(read_fd)
        try:
            said = os.read(read_fd, 64)
        finally:
            os.close(read_fd)
        if not ready.done():
            ready.set_result(bool(said))  # b"": the child exited before it listened

    loop.add_reader(read_fd, readable)
    return _Child(index, process, ready)


async def _stop(children: Sequence[_Child]) -> list[int]:
    """SIGTERM to the children still running; their exit codes (killed past ``STOP_SECONDS``)."""
    for child in children:
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_SECONDS):
            return list(await asyncio.gather(*(c.process.wait() for c in children)))
    except TimeoutError:
        for child in children:
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
        return list(await asyncio.gather(*(c.process.wait() for c in children)))


async def run_processes(args: argparse.Namespace, dsn: str) -> int:
    """Run ``args.processes`` API processes on one port until SIGTERM/SIGINT (see the module
    docstring); ``FatalError`` naming the child that failed to start or exited on its own."""
    try:
        reservation = reserve_port(args.host, args.port)
    except OSError as exc:
        from hub.cli.serve import listen_error

        raise listen_error(args.host, args.port, exc) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    children: list[_Child] = []
    with reservation:
        port = reservation.getsockname()[1]
        try:
            for index in range(args.processes):
                children.append(await _spawn(child_argv(args, port, index), index, dsn))
            failed = await _serve(args, port, children, stop)
        finally:
            codes = await _stop(children)
    if failed is not None:
        raise FatalError(failed)
    if any(code != 0 for code in codes):
        raise FatalError(f"API processes exited with {codes} after SIGTERM")
    return 0


async def _serve(
    args: argparse.Namespace, port: int, children: Sequence[_Child], stop: asyncio.Event
) -> str | None:
    """Wait for every child to listen, then for a signal or a child's exit; what failed."""
    exits: dict[asyncio.Future[Any], _Child] = {
        asyncio.ensure_future(c.process.wait()): c for c in children
    }
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    done: set[asyncio.Future[Any]] = set()
    try:
        starting: set[asyncio.Future[Any]] = {c.ready for c in children}
        while starting:
            done, _ = await asyncio.wait(
                {*starting, stopped, *exits}, return_when=asyncio.FIRST_COMPLETED
            )
            if stopped in done or not done.isdisjoint(exits):
                break
            if not all(ready.result() for ready in done):
                break  # a child closed the pipe without a word: it exits
            starting -= done
        else:
            scheme = "https" if args.tls_cert else "http"
            host = f"[{args.host}]" if ":" in args.host else args.host
            workers = "without workers" if args.no_workers else "with projection workers in 0"
            log.info(
                "ledgerhub serving on %s://%s:%d with %d processes %s",
                scheme,
                host,
                port,
                len(children),
                workers,
            )
            done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
        if stopped in done:
            return None
        # the child that failed, reaped (the others are stopped after this, not waited for)
        await asyncio.wait(exits, timeout=STOP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for child in children:
            if child.process.returncode is not None:
                return (
                    f"API process {child.index} (pid {child.process.pid}) exited with "
                    f"{child.process.returncode}; stopped the others"
                )
        return "an API process did not start; stopped the others"
    finally:
        stopped.cancel()
        for future in exits:
            future.cancel()
