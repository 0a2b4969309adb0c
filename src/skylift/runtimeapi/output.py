"""What a runtime process writes: one pipe for its stdout and stderr, read by the loop.

Attribution rule: an invocation's logs are everything read from the pipe since the
previous invocation's logs were taken, up to the moment its answer arrived (or its
process died or was killed). So init-phase output shows in the first invocation's logs,
and output written after an answer (a background thread) in the next one's, as both do in
the instance's CloudWatch stream, where they precede the next START line.

The answer and the output travel on different fds, so the loop may see the answer first;
`take` therefore drains the pipe synchronously before cutting. Whatever the runtime
wrote before posting its answer is in the pipe by then.
"""

from __future__ import annotations

import asyncio
import os

from skylift.runtime.output import KEEP

CHUNK = 1 << 16


class Output:
    """The read end of a runtime's output pipe; keeps the last `KEEP` bytes unread."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._loop = loop
        self._buffer = bytearray()
        self._dropped = 0
        loop.add_reader(fd, self.drain)

    def drain(self) -> None:
        """Read what the pipe holds now, without waiting; close it at end of file."""
        while self._fd >= 0:
            try:
                data = os.read(self._fd, CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self._buffer += data
            if len(self._buffer) > 2 * KEEP:
                # A process that prints without end costs at most ~2 * KEEP of memory.
                cut = len(self._buffer) - KEEP
                del self._buffer[:cut]
                self._dropped += cut

    def take(self) -> bytes:
        """Everything written since the last `take` (its tail, when there was too much)."""
        self.drain()
        data = bytes(self._buffer)
        if self._dropped:
            data = f"[skylift: {self._dropped} earlier bytes of output dropped]\n".encode() + data
        self._buffer.clear()
        self._dropped = 0
        return data

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
