"""The supervisor's handle on one zygote process (see `skylift.runtime.zygote`)."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import orjson

from skylift.engine import zygote_process
from skylift.errors import DeclarationError, LoadError
from skylift.runtime.wire import MAX_PACKET

logger = logging.getLogger("skylift.zygote")
INIT_TIMEOUT = 60.0
RESTART_PAUSE = 1.0  # seconds between attempts to start a dead zygote again, after one failed


@dataclass(frozen=True)
class Forked:
    """A new worker process: its pid, the supervisor's end of its channel, its log memfd."""

    pid: int
    channel: socket.socket
    log_fd: int
    # Known dead already: it ended in its init phase (a spawned instance's), so it must
    # count as failed at once, before its channel's end of file is read.
    dead: bool = False


class Zygote:
    """Starts a zygote, asks it for workers, and learns how they exit."""

    def __init__(self, setup: dict[str, Any], label: str) -> None:
        self.setup = setup
        self.label = label
        self.ready: dict[str, Any] = {}
        self._ctl: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._forks: collections.deque[asyncio.Future[Forked]] = collections.deque()
        self._exits: dict[int, str] = {}
        self._exit_waiters: dict[int, asyncio.Future[str]] = {}
        # A pidfd of each worker not known to have exited: to kill it should the zygote
        # die (a sandboxed worker leads no process group; no reused pid is hit).
        self._pidfds: dict[int, int] = {}
        self._closed = False
        self._stopped = False  # closed on purpose: do not restart
        self._restarting = asyncio.Lock()
        self._retry_at = 0.0  # after a failed restart: when the next may be tried

    async def start(self) -> dict[str, Any]:
        """Spawn the zygote, run the init phase, return its `ready` message."""
        loop = asyncio.get_running_loop()
        # A process started ahead for this folder (`zygote_process.start_spare`), or now.
        self._proc, ours = zygote_process.take(self.setup["code_dir"])
        ours.setblocking(False)
        self._ctl = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        ours.send(orjson.dumps(self.setup))
        try:
            message = await asyncio.wait_for(self._ready, INIT_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise LoadError(
                f"{self.label}: the init phase (importing your code) took over "
                f"{INIT_TIMEOUT:.0f} s; make module-level work lighter"
            ) from None
        if message["op"] == "failed":
            await self.close()
            if message["kind"] == "declaration":
                raise DeclarationError(message["message"])
            raise LoadError(f"{self.label}: importing your code failed:\n{message['message']}")
        self.ready = message
        return message

    def _on_readable(self) -> None:
        assert self._ctl is not None
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._ctl, MAX_PACKET, 2)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._on_lost()
                return
            message = orjson.loads(data)
            op = message["op"]
            if op == "forked":
                fut = self._forks.popleft()
                if len(fds) != 2:  # the kernel dropped fds we had no room for
                    for fd in fds:
                        os.close(fd)
                    self.kill(message["pid"])
                    if not fut.done():
                        fut.set_exception(
                            LoadError(
                                "could not take over a new instance: this process is out of file "
                                "descriptors; raise the limit (ulimit -n) or lower max_concurrency"
                            )
                        )
                    continue
                forked = Forked(message["pid"], socket.socket(fileno=fds[0]), fds[1])
                try:
                    opened = os.pidfd_open(forked.pid)
                    # An ended worker of a zygote before this one had that pid: its pidfd.
                    if forked.pid in self._pidfds:
                        os.close(self._pidfds.pop(forked.pid))
                    self._pidfds[forked.pid] = opened
                except OSError:  # gone already (or no pidfds here): its group, then
                    pass
                if fut.done():  # the asker gave up; do not leak the worker
                    forked.channel.close()
                    os.close(forked.log_fd)
                else:
                    fut.set_result(forked)
            elif op == "fork_failed":  # the zygote could not fork it, and serves on
                fut = self._forks.popleft()
                if not fut.done():
                    fut.set_exception(
                        LoadError(
                            f"{self.label}: could not start an instance of "
                            f"{message['function']}: {message['message']}"
                        )
                    )
            elif op == "exited":
                if (pidfd := self._pidfds.pop(message["pid"], None)) is not None:
                    os.close(pidfd)
                self._exits[message["pid"]] = message["status"]
                if len(self._exits) > 1024:  # exits nobody asked about (idle reaping)
                    del self._exits[next(iter(self._exits))]
                waiter = self._exit_waiters.pop(message["pid"], None)
                if waiter and not waiter.done():
                    waiter.set_result(message["status"])
            elif self._ready and not self._ready.done():
                self._ready.set_result(message)

    def _on_lost(self) -> None:
        loop = asyncio.get_running_loop()
        if self._ctl is not None:
            loop.remove_reader(self._ctl.fileno())
        error = LoadError(f"{self.label}: the zygote process exited")
        if self._ready and not self._ready.done():
            code = self._proc.poll() if self._proc else None
            self._ready.set_result(
                {"op": "failed", "kind": "import", "message": f"zygote exited ({code})"}
            )
        while self._forks:
            fut = self._forks.popleft()
            if not fut.done():
                fut.set_exception(error)
        self._closed = True
        # No `exited` will come: close the pidfds of the workers that ended; those that
        # serve on keep theirs until killed (`kill`) or closed (`close`).
        for pid, pidfd in list(self._pidfds.items()):
            if ended(pidfd):
                os.close(self._pidfds.pop(pid))

    async def fork(self, function: str) -> Forked:
        """A new warm worker for `function`; restarts the zygote if it died (again after
        RESTART_PAUSE when a restart itself failed, e.g. killed in its init phase)."""
        if self._closed and not self._stopped:
            async with self._restarting:
                if self._closed and not self._stopped:
                    await self._restart()
        if self._closed or self._ctl is None:
            raise LoadError(f"{self.label}: the zygote is not running")
        try:
            self._ctl.send(orjson.dumps({"op": "fork", "function": function}))
        except (BrokenPipeError, ConnectionResetError):
            # It exited before the loop read its channel's end: lost now, started again.
            self._on_lost()
            return await self.fork(function)
        # Queued after the send: no answer can come before (it arrives on this loop).
        fut: asyncio.Future[Forked] = asyncio.get_running_loop().create_future()
        self._forks.append(fut)
        return await fut

    async def _restart(self) -> None:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise LoadError(
                f"{self.label}: the zygote is not running (starting it again failed; "
                f"next try in {wait:.1f} s)"
            )
        logger.warning("%s: the zygote died; starting it again", self.label)
        await self._reset()
        try:
            await self.start()
        except (LoadError, DeclarationError):
            # start() closed it as if on purpose: keep it restartable, but not at once.
            self._stopped = False
            self._retry_at = time.monotonic() + RESTART_PAUSE
            raise

    def kill(self, pid: int) -> None:
        """Kill worker `pid` and anything it started (its process group; sandboxed, its
        PID namespace)."""
        # By its pidfd first, which no reused pid can hit: it works with the zygote gone
        # too, and is then no longer needed.
        if (pidfd := self._pidfds.pop(pid, None)) is not None:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
        if not self._closed and self._ctl is not None:
            try:
                self._ctl.send(orjson.dumps({"op": "kill", "pid": pid}))
                return
            except OSError:
                pass
        # No zygote to ask: the worker was re-parented and runs on; kill its group too.
        # (A sandboxed worker leads no group: it is PID 2 of a namespace whose maker,
        # runtime/sandbox_fork.py, ends the rest when it ends.)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def exit_status(self, pid: int, timeout: float = 1.0) -> str | None:
        """How worker `pid` ended ("exit status 1", "signal: killed"), once reaped."""
        if pid in self._exits:
            return self._exits.pop(pid)
        waiter = self._exit_waiters.setdefault(pid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return None
        finally:
            self._exits.pop(pid, None)

    def forget(self, pid: int) -> None:
        self._exits.pop(pid, None)

    async def _reset(self) -> None:
        serving, self._pidfds = self._pidfds, {}  # the dead zygote's warm workers: to kill
        await self.close()
        self._pidfds = serving
        self._stopped = False
        self._closed = False
        self._exits.clear()

    async def close(self) -> None:
        self._stopped = True
        while self._forks:  # nobody will answer these now: never leave a caller waiting
            fut = self._forks.popleft()
            if not fut.done():
                fut.set_exception(LoadError(f"{self.label}: the zygote was closed"))
        if self._ctl is not None:
            if not self._closed:
                asyncio.get_running_loop().remove_reader(self._ctl.fileno())
            self._ctl.close()
            self._ctl = None
        self._closed = True
        # Exits can no longer be reported: a pidfd left here would never be closed.
        for pidfd in self._pidfds.values():
            os.close(pidfd)
        self._pidfds.clear()
        if self._proc is not None:
            proc, self._proc = self._proc, None
            # Closing the channel makes the zygote kill its workers and exit.
            if not await _ended(proc, 1.0):
                proc.kill()
                proc.wait()


async def _ended(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether `proc` ends (and is reaped) within `timeout` seconds: a pidfd tells at
    once, where polling would add up to its interval to every `skylift invoke`."""
    if proc.poll() is not None:
        return True
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # no pidfd here (an old kernel, a seccomp filter): poll instead
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True
    loop.add_reader(pidfd, readable)
    try:
        await asyncio.wait_for(ended, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.poll() is not None


def ended(pidfd: int) -> bool:
    """Whether the process of `pidfd` has ended (poll, not select: any fd number)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))
