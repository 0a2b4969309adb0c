"""Where a running server can be found: `.skylift/server.json` beside the app, written
when `skylift up` is ready and removed when it stops, so `skylift status APP` and
`skylift scale` reach the right server without being told its URL."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from skylift.errors import SkyliftError

NAME = "server.json"


def announce(state_dir: Path, url: str, token: str | None = None) -> None:
    """Say where the server is (and its token, for the CLI: readable by its owner only)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f".{NAME}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump({"url": url, "pid": os.getpid(), "token": token}, f)
    temporary.replace(state_dir / NAME)  # atomic: a reader sees the old file or the new


def withdraw(state_dir: Path) -> None:
    """Remove the file if this process wrote it (another server may have replaced it)."""
    path = state_dir / NAME
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def token(state_dir: Path) -> str | None:
    """The token of the server running for this state, if it has one."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        found = json.loads((state_dir / NAME).read_text()).get("token")
        return str(found) if found else None
    return None


def find(state_dir: Path) -> str | None:
    """The URL of the server running for this state, or None if none is."""
    try:
        announced = json.loads((state_dir / NAME).read_text())
        url, pid = announced["url"], announced["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # it was killed before it could withdraw: stale
    except PermissionError:
        pass  # alive, but another user's
    return str(url)


LOCK = "server.lock"


def hold(state_dir: Path) -> int:
    """Take the app's server lock for this process's life; SkyliftError if a server has it.

    An flock on `.skylift/server.lock`: the kernel releases it however the process ends
    (even kill -9), so a crashed server never blocks the next. Returns the descriptor,
    which must stay open; no child inherits it across exec (close-on-exec).
    """
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(state_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise SkyliftError(_held_message(state_dir)) from None
    return descriptor


def _held_message(state_dir: Path) -> str:
    app = state_dir.parent
    try:
        announced = json.loads((state_dir / NAME).read_text())
        where = f"at {announced['url']} (pid {announced['pid']})"
        stop = f"stop it (Ctrl-C in its terminal, or kill {announced['pid']})"
    except (OSError, ValueError, KeyError, TypeError):
        where = "(still starting: it has not announced its URL yet)"
        stop = "stop it"
    return (
        f"another `skylift up` is already serving {app} {where}: use that server, or {stop} first"
    )
