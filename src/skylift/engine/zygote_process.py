"""A zygote's process, started now or ahead of need.

`Zygote.start` runs `python -m skylift.runtime.zygote FD` and sends it its setup. The
interpreter's start and its import of skylift's runtime (~40 ms) need nothing of that
setup, so a caller that knows the code folder early may start the process ahead
(`start_spare`) and go on with its own work meanwhile: the next `Zygote.start` for that
folder takes the process over (`take`). `skylift invoke` does so before it imports the
engine, so the two happen at once. The process is started exactly as `Zygote.start`
would start it (same command, environment and working folder); until its setup comes it
runs nothing of the app; `drop_spares` ends one nobody took, and it exits quietly
when its channel closes before a setup came.

Kept apart from `engine/zygote.py` so that starting it imports no event loop.
"""

from __future__ import annotations

import socket
import subprocess
import sys

from skylift.runtime.environ import host_environment
from skylift.runtime.wire import MAX_PACKET

Started = tuple[subprocess.Popen[bytes], socket.socket]  # the process, our end of its channel

_SPARES: dict[str, Started] = {}  # by code folder: the working folder it started in


def spawn(code_dir: str) -> Started:
    """Start a zygote process in `code_dir`; it waits for its setup on the channel."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_PACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "skylift.runtime.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            # Init-phase output goes to our stderr: stdout is for results (skylift invoke).
            stdout=sys.stderr.fileno(),
            # `python -m` puts its working folder first on the import path: the code's.
            cwd=code_dir,
            # Built, not inherited: nothing of the shell's environment reaches user code.
            env=host_environment(),
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


def start_spare(code_dir: str) -> None:
    """Start a zygote process for `code_dir` now, for the next `take(code_dir)`."""
    if code_dir not in _SPARES:
        _SPARES[code_dir] = spawn(code_dir)


def take(code_dir: str) -> Started:
    """The spare started for `code_dir`, if any (and still alive), else a new process."""
    spare = _SPARES.pop(code_dir, None)
    if spare is not None:
        if spare[0].poll() is None:
            return spare
        spare[1].close()
    return spawn(code_dir)


def drop_spares() -> None:
    """End the spares nobody took (the caller failed before it loaded the app). They
    have run nothing of the app: a kill loses nothing."""
    while _SPARES:
        process, channel = _SPARES.popitem()[1]
        channel.close()
        process.kill()
        process.wait()
