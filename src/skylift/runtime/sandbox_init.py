"""PID 1 of an instance's PID namespace: a process that only reaps.

The kernel treats PID 1 of a namespace apart: orphans are given to it to reap, and a
signal sent to it from inside its namespace is dropped unless it has a handler. A
handler serving as PID 1 would leave its children's orphans as zombies, and its own
`os.kill(os.getpid(), signal.SIGTERM)` would do nothing. So, as Lambda's execution
environment has its own init, an instance's first process in its namespace is this one
and the serving process comes second (PID 2).

It ignores SIGCHLD, so the kernel reaps every child it is given at once (no `wait` loop,
no wakeups); it holds no file descriptor (the instance's channel closes when the serving
process ends); it cannot be traced or read through /proc by the instance (not dumpable:
its root and mounts are the host's); and it dies with its parent, W, or when W kills it
after the serving process ended, which ends everything left in the namespace. Signals:
the only one skylift sends an instance is SIGKILL, to W's process group, which holds W,
this process and the serving process unless the handler left it (then W's death ends
them: parent-death signal), so there is nothing to forward.
"""

from __future__ import annotations

import os
import signal

from skylift.runtime.sandbox_mounts import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, libc, prctl


def start(alive: int, alive_w: int) -> int:
    """Fork the namespace's PID 1 (the first child after `unshare(CLONE_NEWPID)`); returns
    its pid in the parent. `alive` reads end-of-file once the parent (holding `alive_w`)
    has died."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.close(alive_w)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "prctl pdeathsig")
        prctl(PR_SET_DUMPABLE, 0, "prctl dumpable")
        os.set_blocking(alive, False)
        try:
            if os.read(alive, 1) == b"":  # the parent already died: nothing to serve
                os._exit(0)
        except BlockingIOError:
            pass
        os.closerange(0, 2**31 - 1)
        for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        while True:
            libc.pause()
    finally:
        os._exit(0)
