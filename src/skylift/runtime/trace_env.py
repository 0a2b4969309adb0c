"""`_X_AMZN_TRACE_ID`, the invocation's X-Ray trace header, set without setenv(3).

`os.environ[name] = value` calls setenv, and glibc's setenv never frees a value it has
copied: it keeps every one in a search tree so that pointers getenv handed out stay
valid. With a new trace header per invocation that is a leak (measured: about 150 bytes
per invocation, 46 MB after 300,000) and a tree walk that gets slower as it grows. Here
the variable instead points at one of two buffers of the worker's own (putenv(3) copies
nothing): each invocation writes its value into the one not in use and points the
environment at it, so a reader sees one whole value or the next, and `os.environ` gets
the same value.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

NAME = "_X_AMZN_TRACE_ID"
_KEY = os.fsencode(NAME)
_PREFIX = _KEY + b"="
_START = len(_PREFIX)
_ENCODING = sys.getfilesystemencoding()
# Every buffer the C environment ever pointed at, kept for the life of the process: a
# pointer getenv returned (or the environment itself) may still point into it.
_BUFFERS: list[ctypes.Array[ctypes.c_char]] = []


class TraceVariable:
    """Sets and clears `_X_AMZN_TRACE_ID` in the C environment (what subprocesses and
    C extensions see) and in `os.environ`, at no memory cost per value."""

    def __init__(self, capacity: int = 256) -> None:
        self._libc: Any = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.putenv.argtypes = [ctypes.c_char_p]
            self._libc = libc
        except (OSError, AttributeError):  # no putenv to call: os.environ's way
            pass
        # `os.environ` keeps its values encoded in `_data`; writing it there is how it
        # learns a value without setting the C variable a second time.
        self._data: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
        # Two buffers, the environment pointing at one: each value is written whole into
        # the other, which putenv then points the environment at, so whoever reads it
        # (a thread the handler left running, a fork) sees one value or the next, never
        # half of each.
        self._buffers: list[ctypes.Array[ctypes.c_char]] = []
        self._views: list[memoryview] = []
        self._capacity = 0
        self._next = 0  # the buffer the next value goes to
        if self._libc is not None and isinstance(self._data, dict):
            self._grow(capacity)

    def set(self, value: str | None) -> None:
        """The variable as this invocation's trace header; None: no variable."""
        if value is None:
            if NAME in os.environ:
                del os.environ[NAME]  # unsetenv: nothing copied, nothing kept
            return
        encoded = value.encode(_ENCODING, "surrogateescape")  # as os.environ encodes
        if not self._views or self._data is None or b"\0" in encoded:
            os.environ[NAME] = value  # the portable way (and its error for a NUL)
            return
        end = _START + len(encoded)
        if end >= self._capacity:
            self._grow(end + 1)
        which = self._next
        view = self._views[which]
        view[_START:end] = encoded
        view[end] = 0
        # Every time, not only when the handler moved the variable off our buffer with
        # os.environ: putenv copies nothing, and a handler's os.putenv or a C library's
        # setenv is seen nowhere else.
        self._libc.putenv(self._buffers[which])
        self._next = 1 - which
        self._data[_KEY] = encoded

    def _grow(self, size: int) -> None:
        capacity = max(size, 2 * self._capacity)
        self._buffers = [ctypes.create_string_buffer(_PREFIX, capacity) for _ in range(2)]
        _BUFFERS.extend(self._buffers)
        self._views = [memoryview(buffer).cast("B") for buffer in self._buffers]
        self._capacity = capacity
        self._next = 0
