"""A zygote's watch over its channel during the init phase (runtime/zygote.py)."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading


class InitWatch:
    """The init phase reads nothing from the channel: meanwhile a thread watches it, so a
    supervisor that dies then (its process group SIGKILLed; ours is our own) takes this
    zygote, and whatever the user's import started in its group, with it. After the
    init phase the zygote's own loop sees the channel close and ends its workers."""

    def __init__(self, ctl: socket.socket) -> None:
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, args=(ctl.fileno(),), daemon=True)
        self._thread.start()

    def _watch(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, 0)  # a hang-up is always reported; data waits for the loop
        poller.register(self._stop_r, select.POLLIN)
        if any(ready == fd for ready, _ in poller.poll()):
            os.killpg(0, signal.SIGKILL)

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        os.close(self._stop_r)
        os.close(self._stop_w)
