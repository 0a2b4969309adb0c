"""Who may write a key now: one writer per key, in this process or across processes.

A store owned by one process serialises writes to a key with thread locks (64 shards).
A store several nodes share (`skylift up --objects DIR`) adds a POSIX record lock on
one byte of ``DIR/.skylift-locks`` per shard, taken after the thread lock (record locks
belong to a process, so its own threads need the thread lock to exclude each other).
Record locks work across processes on one host and, on NFSv4 and other file systems
with POSIX locks, across hosts. Shards come from a stable hash (CRC-32), so every node
maps a key to the same byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

SHARDS = 64
LOCK_FILE = ".skylift-locks"


class KeyLocks:
    """Example: ``with KeyLocks(Path("objects"), shared=True).hold("photos", "a.jpg"): ...``"""

    def __init__(self, root: Path, *, shared: bool = False) -> None:
        self._threads = [threading.Lock() for _ in range(SHARDS)]
        self._file: int | None = None
        if shared:
            self._file = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def hold(self, bucket: str, key: str) -> Iterator[None]:
        shard = zlib.crc32(f"{bucket}/{key}".encode()) % SHARDS
        with self._threads[shard]:
            if self._file is None:
                yield
                return
            fcntl.lockf(self._file, fcntl.LOCK_EX, 1, shard)
            try:
                yield
            finally:
                fcntl.lockf(self._file, fcntl.LOCK_UN, 1, shard)
