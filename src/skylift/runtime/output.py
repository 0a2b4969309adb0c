"""A worker's captured output: fd 1 and 2 point at a memfd, which this module drains
after each invocation and keeps bounded while one runs.

The memfd is append-only (O_APPEND on the open file description fds 1, 2 and the memfd
share), so it can be truncated under a running handler without leaving holes: the next
write lands at the new end. A handler that prints gigabytes costs at most about `TRIM_AT`
bytes of memory (plus what it writes in one `CHECK_EVERY`); the tail (`KEEP` bytes) is
what the invocation's log shows.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

KEEP = 1 << 20  # bytes of output kept per invocation: the tail wins
TRIM_AT = 8 << 20  # trim when the memfd grows past this
# How often the trimmer looks. It is never woken per invocation: waking a thread costs a
# context switch and a GIL handoff on every request (measured: +50 us of worker CPU).
CHECK_EVERY = 0.25


def tail(fd: int, limit: int = KEEP, size: int | None = None) -> tuple[bytes, int]:
    """The last `limit` bytes of `fd` (`size` bytes long, if known) and how many bytes
    came before them."""
    if size is None:
        size = os.fstat(fd).st_size
    start = max(0, size - limit)
    return (os.pread(fd, size - start, start) if size else b""), start


class Output:
    """The captured output of one worker."""

    def __init__(self, fd: int, captured: bool = True) -> None:
        self.fd = fd
        # Not captured: an instance under pdb writes to the terminal (or wherever the
        # server's output goes), which shows it itself; nothing to keep, nothing to cut.
        self.captured = captured
        self._lock = threading.Lock()
        self._dropped = 0
        if self.captured:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
            threading.Thread(target=self._trim_forever, name="skylift-output", daemon=True).start()

    def drain(self) -> bytes:
        """Everything written since the last drain (its tail, if it was trimmed)."""
        if not self.captured:
            return b""
        with self._lock:
            # The size by lseek, not fstat (half the cost: no stat_result). Moving the
            # offset is harmless: every write to the memfd appends (O_APPEND).
            size = os.lseek(self.fd, 0, os.SEEK_END)
            if not size and not self._dropped:  # most invocations print nothing
                return b""
            data, before = tail(self.fd, size=size)
            dropped = self._dropped + before
            self._dropped = 0
            if data or before:
                os.ftruncate(self.fd, 0)
        if dropped:
            data = f"[skylift: {dropped} earlier bytes of output dropped]\n".encode() + data
        return data

    def _trim_forever(self) -> None:
        while True:
            time.sleep(CHECK_EVERY)
            with self._lock:
                if os.fstat(self.fd).st_size > TRIM_AT:
                    data, before = tail(self.fd)
                    os.ftruncate(self.fd, 0)
                    os.write(self.fd, data)
                    self._dropped += before
