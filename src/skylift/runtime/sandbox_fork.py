"""A zygote's sandboxed instances: forked straight into a PID namespace of their own.

No process waits for an instance outside its namespace but the zygote itself:

- At its start, before any user code, the zygote enters a user namespace of its own
  (`enter_user_namespace`: its uid mapped to itself), which lets it, unprivileged, fork
  children into PID namespaces that namespace owns; after its init phase it forks the
  *maker* (`start_maker`), a process that only makes those namespaces. (The zygote
  cannot make them itself: once it has forked into one, it may not go back to make
  the next without privileges on the host.)
- The maker makes each namespace with its PID 1 (`clone(CLONE_NEWPID)` of itself,
  running only `pause()` on a small stack) and hands the zygote a pidfd of it, one ahead
  of need. The maker's every signal is blocked and its SIGCHLD ignored, so each PID 1
  starts so too: the kernel reaps each orphan given to it at once, no signal from
  inside the namespace reaches it (PID 1 drops those it has no handler for), SIGKILL
  from outside ends it. It is a copy of the maker, not of the zygote (no page of the
  app's, no file of the zygote's), and a copy of nothing writable but its stack
  (`sandbox_init.copy_nothing`): it holds two pages of its own, and its page tables.
- Per instance (`fork`), the zygote points its children's PID namespace at the next
  one (`setns` with that pidfd: only where its next children go) and forks the serving
  process H, PID 2 there. H's parent is the zygote, which reaps it and reports its exit
  status unchanged; when H ends the zygote kills that PID 1 (`end`), and the kernel
  then kills everything left in the namespace, whatever `setsid` or double fork it did.
  The zygote tells the maker which PID 1 each H uses (with a pidfd of H): if the zygote
  dies, its warm instances serve on (as they always did), and the maker ends each one's
  namespace when it ends, then itself. If the maker dies instead, the zygote (a child
  subreaper) adopts its PID 1s: those of instances it ends as always, and one made ahead
  and never handed over when it exits (`end_adopted`), then reaps them all.
- H then enters the rest (`enter`): its cgroups (its PID 1 in those that end an
  instance), its own mount and IPC namespaces, the read-only mounts, its /tmp, and the
  lock (`sandbox_mounts.lock`: a user namespace below the zygote's). PID 1 stays in the
  zygote's user namespace, so H, in a child namespace with no capability in that one,
  can neither trace PID 1 nor open anything of it through `/proc/1`.

Before: a forked worker unshared the namespaces itself and stayed outside as the
namespace's waiting parent, a third process holding about 1.2 MiB of pages both it and
the serving process had written (`sandbox.enter`, still the way of spawned and Runtime
API instances, which no zygote forks).
"""

from __future__ import annotations

import errno
import gc
import os
import select
import signal
import socket
from collections.abc import Callable
from typing import Any

from skylift.runtime import sandbox_cgroups, sandbox_init
from skylift.runtime.sandbox_mounts import (
    CLONE_NEWIPC,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    check,
    instance_mounts,
    libc,
    lock,
    map_ids,
    mount,
    prctl,
    probe_in_child,
    set_read_only,
    tmpfs_tmp,
)

PR_SET_NAME = 15
NAME = b"skylift-ns-init"
_maker: socket.socket | None = None  # the zygote's end of the maker's channel
_maker_pidfd = -1  # a pidfd of the maker: its channel may not close when it dies (`_next`)
_maker_pid = 0
MAKER_TIMEOUT = 10.0  # seconds to wait for a namespace before failing the instance's start
_joined = False  # whether this zygote has pointed its children at an instance's namespace


class MakerLost(OSError):
    """The maker died after the zygote forked an instance: a new maker forked now would
    land in that instance's PID namespace (the zygote cannot point its children back at
    its own), so this zygote is done: it fails the start and exits, ending its instances,
    and the supervisor starts a new zygote for the next start."""


_inits: dict[int, tuple[int, int]] = {}  # worker pid -> its PID 1's pidfd and pid


def enter_user_namespace() -> None:
    """Make this zygote (single-threaded, no user code run yet) able to fork instances
    into PID namespaces of their own (`start_maker` once its init phase is over)."""
    uid, gid = os.getuid(), os.getgid()
    check(libc.unshare(CLONE_NEWUSER), "unshare (user namespace)")
    map_ids(uid, gid)
    # Gaining capabilities (in the new namespace) made it non-dumpable; its copies, the
    # PID 1s, would be so too, and then the zygote could not join their namespaces.
    prctl(PR_SET_DUMPABLE, 1, "prctl dumpable")


def start_maker() -> None:
    """Fork the maker, once the app is imported: a copy of the zygote as it will stay
    (what the zygote wrote before, a maker forked before would keep a page of each)."""
    global _maker, _maker_pidfd, _maker_pid
    # The PID 1s of a maker killed meanwhile (one it made ahead and never handed over)
    # become ours, not the host's: `end_adopted` ends them (nothing else would).
    prctl(PR_SET_CHILD_SUBREAPER, 1, "prctl child subreaper")
    gc.freeze()  # a collection in the maker would write to every object's page
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            _make(theirs)
        finally:
            os._exit(1)
    theirs.close()
    _maker, _maker_pid = ours, pid
    _maker_pidfd = os.pidfd_open(pid)  # now: once reaped (serve_forks), it could not be
    ours.send(b"+")  # the first namespace, made before the first fork is asked for


def fork() -> int:
    """Fork a new instance into a PID namespace of its own: its pid in the zygote, 0 in
    the instance, which then calls `enter`."""
    global _joined
    assert _maker is not None
    for attempt in range(2):
        data, init = _next()
        try:
            _maker.send(b"+")  # the next one, made while this instance starts
        except OSError:  # the maker has gone: the next `_next` starts another
            pass
        try:
            check(libc.setns(init, CLONE_NEWPID), "setns (the instance's PID namespace)")
            _joined = True
            pid = os.fork()
        except OSError:  # its PID 1 died meanwhile (the fork fails): take the next
            os.close(init)
            if attempt:
                raise
            continue
        if pid == 0:
            os.close(init)
            return 0
        _inits[pid] = (init, int(data))
        # The maker ends the namespace when this process ends, should we be gone by then.
        try:
            worker = os.pidfd_open(pid)
            try:
                socket.send_fds(_maker, [b"=" + data], [worker])
            finally:
                os.close(worker)
        except OSError:  # the maker has gone: we still end the namespace when we reap it
            pass
        return pid
    raise AssertionError("unreachable")


def _next() -> tuple[bytes, int]:
    """The next namespace from the maker: its PID 1's pid and a pidfd of it. If the maker
    has gone, a new one is started (once). Its end of the channel may stay open after it
    died (each PID 1 it cloned holds a copy of its files), so its pidfd tells, not an end
    of file; and a maker that does not answer fails this start, not the zygote."""
    if _maker_pidfd < 0:  # starting a new maker failed last time: try again
        _restart_maker()
    assert _maker is not None
    for attempt in range(2):
        poller = select.poll()
        poller.register(_maker.fileno(), select.POLLIN)
        poller.register(_maker_pidfd, select.POLLIN)
        ready = [fd for fd, _ in poller.poll(MAKER_TIMEOUT * 1000)]
        if not ready:
            raise OSError(
                errno.ETIMEDOUT,
                f"the sandbox's namespace maker did not answer in {MAKER_TIMEOUT:.0f} s",
            )
        fds: list[int] = []
        if _maker.fileno() in ready:  # what it sent before it died, if it did, is still good
            try:
                data, fds, _, _ = socket.recv_fds(_maker, 16, 1)
            except OSError:
                fds = []
            if fds:
                return data, fds[0]
        if attempt:
            break
        _restart_maker()  # gone: start another (what it made for instances, we end)
    raise OSError(errno.ECHILD, "the sandbox's namespace maker has gone (and again when restarted)")


def _restart_maker() -> None:
    global _maker_pidfd
    if _joined:
        raise MakerLost(errno.ECHILD, "the sandbox's namespace maker has gone; a new zygote starts")
    if _maker is not None:
        _maker.close()
    if _maker_pidfd >= 0:
        os.close(_maker_pidfd)
        _maker_pidfd = -1
    start_maker()


def end(pid: int) -> None:
    """Worker `pid` ended (reaped): end its PID namespace, and all that is left in it."""
    init = _inits.pop(pid, None)
    if init is not None:
        _kill(init[0])


def end_all() -> None:
    for pid in list(_inits):
        end(pid)


def end_adopted() -> list[int]:
    """Kill the PID 1s this zygote adopted from a maker that died before it could end
    them (see `start_maker`); their pids, to reap. Ours until reaped, so no pid is reused.
    After `end_all` (those of instances are then already killed). Found through
    /proc/self/task/*/children (CONFIG_PROC_CHILDREN, in Debian's and Ubuntu's kernels)."""
    adopted = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                children = [int(pid) for pid in f.read().split()]
        except OSError:
            continue
        for pid in children:
            if pid == _maker_pid:
                continue
            try:
                with open(f"/proc/{pid}/comm", "rb") as f:
                    if f.read().strip() != NAME:
                        continue
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            adopted.append(pid)
    return adopted


def kill(pid: int) -> bool:
    """Kill worker `pid` and all it started, by its PID 1 (the kernel then kills every
    process in the namespace): False if it is no worker of ours in a namespace.

    By a pidfd, not the pid: its PID 1 may have ended already (no pid is then reused),
    and the worker may have left its process group (that of its PID 1, which it joins in
    `enter`: leading no group, it may `setsid`, as on Lambda; a signal to its group
    reaches nothing outside its namespace but its PID 1, which drops it)."""
    init = _inits.get(pid)
    if init is None:
        return False
    try:
        signal.pidfd_send_signal(init[0], signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _kill(init: int) -> None:
    try:
        signal.pidfd_send_signal(init, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(init)


def enter(settings: dict[str, Any], memory_mb: int, tmp_mb: int) -> None:
    """In a new instance (PID 2): its cgroups, its mounts and their lock. It keeps no
    handle on the zygote, the maker or another instance's PID 1."""
    os.setpgid(0, 1)  # its PID 1's group (see `kill`)
    for init, _ in _inits.values():
        os.close(init)
    if _maker is not None:
        _maker.close()
    if _maker_pidfd >= 0:
        os.close(_maker_pidfd)
    own = int(os.readlink("/proc/self"))  # our pid as the zygote and the server know it
    sandbox_cgroups.join(settings, own, memory_mb, init=1)
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare (mount and IPC namespaces)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    instance_mounts(settings, tmp_mb)
    lock()
    prctl(PR_SET_DUMPABLE, 1, "prctl dumpable")  # not inherited: the zygote may not be


def _make(channel: socket.socket) -> None:
    """The maker's life: a namespace and its PID 1 per request; and, for each instance
    the zygote forked into one, the end of that namespace when the instance ends (the
    zygote does it when it reaps the instance: this is for when the zygote is gone,
    and its warm instances serve on). It ends when the zygote and they all have."""
    gc.disable()
    libc.prctl(PR_SET_NAME, NAME, 0, 0, 0)  # in `ps` and `top` (its PID 1s inherit it)
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # its PID 1s are reaped at once
    keep = channel.fileno()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    # A group of its own: a signal to the zygote's group (its init-phase watch, a
    # terminal's job control) must not end it before the namespaces it made.
    os.setpgid(0, 0)
    inits: dict[int, int] = {}  # PID 1: its pid -> its pidfd, until it ends
    try:
        _serve(channel, inits)
    finally:  # whatever went wrong: no PID 1 may outlive it (nothing else would end it)
        for init in inits.values():
            _kill(init)
    os._exit(0)


def _serve(channel: socket.socket, inits: dict[int, int]) -> None:
    keep = channel.fileno()
    workers: dict[int, int] = {}  # an instance's pidfd -> its PID 1's pid
    poller = select.poll()
    poller.register(keep, select.POLLIN)
    while inits or keep >= 0:
        for fd, _ in poller.poll():
            if fd == keep:
                request = _request(channel)
                if request is None:  # the zygote is gone: no more; the spare ends now
                    poller.unregister(keep)
                    keep = -1
                    for pid in set(inits) - set(workers.values()):
                        poller.unregister(inits[pid])
                        _kill(inits.pop(pid))
                elif isinstance(request, tuple):  # an instance uses PID 1 request[1]
                    workers[request[0]] = int(request[1])
                    poller.register(request[0], select.POLLIN)
                else:
                    sandbox_init.copy_nothing()  # the Python heap grows: each time
                    pid = sandbox_init.start(CLONE_NEWPID)
                    os.setpgid(pid, pid)  # the group its instance joins (see `kill`)
                    inits[pid] = os.pidfd_open(pid)
                    poller.register(inits[pid], select.POLLIN)
                    try:
                        socket.send_fds(channel, [str(pid).encode()], [inits[pid]])
                    except OSError:  # the zygote went meanwhile: the next poll says so
                        poller.unregister(inits[pid])
                        _kill(inits.pop(pid))
            elif fd in workers:  # an instance ended: so does its namespace
                poller.unregister(fd)
                os.close(fd)
                if (init := inits.pop(workers.pop(fd), None)) is not None:
                    poller.unregister(init)
                    _kill(init)
            else:  # a PID 1 ended (killed): nothing to reap (SIGCHLD ignored)
                poller.unregister(fd)
                for pid in [p for p, f in inits.items() if f == fd]:
                    os.close(inits.pop(pid))


def _request(channel: socket.socket) -> tuple[int, bytes] | bool | None:
    """What the zygote asks: False for a namespace, (an instance's pidfd, its PID 1's
    pid) to watch, None when it is gone (a zygote that died with our last answer unread
    leaves ECONNRESET, not an end of file)."""
    try:
        data, fds, _, _ = socket.recv_fds(channel, 16, 1)
    except OSError:
        return None
    if not data:
        return None
    if data.startswith(b"="):
        return (fds[0], data[1:]) if fds else False
    return False


def probe() -> str | None:
    """Whether this way works here (in a forked child, before any user code): None if
    it does, else why not."""

    def setup() -> tuple[Callable[[], int], Callable[[int], None]]:
        enter_user_namespace()
        start_maker()
        return fork, end

    def inside() -> None:
        check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare mount namespace")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        set_read_only("/", True, recursive=True)
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        tmpfs_tmp(1)
        lock()
        if os.getpid() != 2:
            raise OSError(0, f"the instance is PID {os.getpid()}, not 2")

    return probe_in_child(setup, inside)
