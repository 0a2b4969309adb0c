"""`_X_AMZN_TRACE_ID`, the invocation's X-Ray trace header, set without setenv(3).

`os.environ[name] = value` calls setenv, and glibc's setenv never frees a value it has
copied: it keeps every one in a search tree so that pointers getenv handed out stay
valid. With a new trace header per invocation that is a leak (measured: about 150 bytes
per invocation, 46 MB after 300,000) and a tree walk that gets slower as it grows. Here
the variable instead points at a buffer of the worker's own (putenv(3) copies nothing),
which each invocation overwrites in place, and `os.environ` gets the same value.
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
        self._view: memoryview | None = None
        self._capacity = 0
        self._value: bytes | None = None  # what `os.environ` holds, while it is ours
        if self._libc is not None and isinstance(self._data, dict):
            self._grow(capacity)

    def set(self, value: str | None) -> None:
        """The variable as this invocation's trace header; None: no variable."""
        if value is None:
            if NAME in os.environ:
                del os.environ[NAME]  # unsetenv: nothing copied, nothing kept
            self._value = None
            return
        encoded = value.encode(_ENCODING, "surrogateescape")  # as os.environ encodes
        if self._view is None or self._data is None or b"\0" in encoded:
            os.environ[NAME] = value  # the portable way (and its error for a NUL)
            return
        end = _START + len(encoded)
        if end >= self._capacity:
            self._grow(end + 1)
        view = self._view
        view[_START:end] = encoded
        view[end] = 0
        if self._data.get(_KEY) is not self._value or self._value is None:
            # The handler set or deleted the variable itself (setenv or unsetenv moved
            # the C environment off our buffer), or it is the first value: point it back.
            self._libc.putenv(_BUFFERS[-1])
        self._data[_KEY] = self._value = encoded

    def _grow(self, size: int) -> None:
        capacity = max(size, 2 * self._capacity)
        buffer = ctypes.create_string_buffer(_PREFIX, capacity)
        _BUFFERS.append(buffer)
        self._view = memoryview(buffer).cast("B")
        self._capacity = capacity
        self._value = None  # the next `set` points the environment at the new buffer
