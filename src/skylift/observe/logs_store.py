"""Every invocation's log, stored under `.skylift/logs/` off the request path.

`skylift up`'s collector (`observe/collect.py`) packs each finished invocation's row into
its stream's pieces for this batch (`open`: a `struct` head per invocation and its bytes
as the invoker holds them); `seal`, from `observe/intake.py` on the event loop's thread a
fraction of a second later, makes each stream's rows of the batch one frame
(`logs_frame.py`) for the writer (`add` does both for a batch, in Python). A
background thread wakes every `interval` seconds and appends the frames to their streams'
files (one `writev` per stream, to files it keeps open); it computes the digests of
events and results too large to keep whole. Retention runs in the same thread: files older
than `max_age` go, then the oldest files of a function whose logs exceed `max_bytes`.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.engine.instance import InvocationResult
from skylift.errors import is_disk_full
from skylift.observe import collect
from skylift.observe import logs_frame as frame
from skylift.observe import logs_layout as layout
from skylift.observe.collect import Pieces
from skylift.spec import FunctionSpec

if TYPE_CHECKING:
    from skylift.observe.collect import Observed

logger = logging.getLogger("skylift.logs")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # per function
DEFAULT_MAX_AGE = 7 * 24 * 3600.0  # seconds
MAX_PENDING = 100_000  # invocations waiting to be written; past it they are dropped, counted
MAX_PENDING_BYTES = 256 * 1024 * 1024  # ... and their bytes (events of up to 6 MB are kept)
MAX_OPEN = 256  # stream files kept open between writes; past it all are closed
WRITEV = 64  # a stream's chunks written as they are (`writev`); more are joined first
SWEEP_EVERY = 30.0  # seconds between retention sweeps


@dataclass(frozen=True)
class Retention:
    """How much log each function keeps: at most `max_bytes`, nothing older than `max_age`."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_age: float = DEFAULT_MAX_AGE

    @property
    def segment_bytes(self) -> int:
        # Small enough that dropping one segment frees a fair share of the budget.
        return max(64 * 1024, self.max_bytes // 8)


# One batch for the writer: (function, stream) -> its frame: a header and the payload,
# or the payload's pieces while a `Large` is among them (`deferred`); how many
# invocations, their bytes, and whether any stream's frame is deferred.
_Batch = tuple[dict[tuple[str, str], Pieces], int, int, bool]
_FLAGS = {"JSON": frame.JSON_FORMAT}  # a log format's flag (Text: none)


class LogStore:
    """Stores each invocation's log events in its stream: rows a collector packs (`open`,
    `seal`), or a batch it is given (`add`; called with one invocation, an invoker
    observer of its own), written by its thread."""

    def __init__(
        self, state_dir: Path, retention: Retention | None = None, interval: float = 0.25
    ) -> None:
        self.directory = layout.root(state_dir)
        self.retention = retention or Retention()
        self.interval = interval
        self.dropped = 0  # invocations whose log was dropped because writing fell behind
        self._pending: list[_Batch] = []
        self._batch: dict[tuple[str, str], Pieces] = {}  # being collected: `open`, `seal`
        # Invocations and bytes added, and taken by the writer (each counter has one
        # writer thread).
        self._added = self._taken = self._added_bytes = self._taken_bytes = 0
        self._streams: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._default_streams: dict[str, str] = {}
        self._segments: dict[tuple[str, str], int] = {}  # (function, stream) -> segment
        self._files: dict[tuple[str, str], list[int]] = {}  # open segments: [fd, size]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0
        self._disk_full_noted = -1e9  # when a full disk was last said (once a minute)

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object | None = None
    ) -> None:
        self.add([(spec, result, instance, time.time_ns())])

    def add(self, batch: Sequence[Observed]) -> None:
        """Pack a batch of finished invocations for the writer thread, in Python (what
        `skylift up`'s collector does as each ends: `observe/collect.py`); no I/O."""
        no_limit = 1 << 62
        collector = collect.make(
            self.open, _nothing, _nothing, (), max_batch=no_limit, max_bytes=no_limit, pure=True
        )
        for observed in batch:
            collector(*observed)
        # Its own batch: one a collector is filling (`skylift up`'s) stays as it is.
        held, self._batch = self._batch, {}
        try:
            taken = collector.take()
            if taken is not None:
                self.seal(taken[2], taken[3])
        finally:
            self._batch = held

    def open(self, spec: FunctionSpec, instance: object | None) -> tuple[Pieces, int]:
        """The pieces of the instance's stream in this batch (rows are appended to them:
        `observe/collect.py`), and its function's row flags."""
        where = (spec.name, self._stream(spec, instance))
        pieces = self._batch.get(where)
        if pieces is None:
            pieces = self._batch[where] = []
        return pieces, _FLAGS.get(spec.log_config.format, 0)

    def seal(self, rows: int, size: int) -> None:
        """Hand this batch's streams (`rows` invocations, `size` bytes) to the writer
        thread as frames; a batch that finds `MAX_PENDING` invocations or
        `MAX_PENDING_BYTES` waiting already is dropped (and counted in `dropped`)."""
        # No lock: only this thread appends (at the end), only the writer takes (from the
        # front, `del` of a prefix), each in one step under the GIL. A lock here could
        # hold the event loop while the OS had the writer thread waiting for a CPU.
        files, self._batch = self._batch, {}
        if not rows:
            return
        if (
            self._added - self._taken >= MAX_PENDING
            or self._added_bytes - self._taken_bytes >= MAX_PENDING_BYTES
        ):
            self.dropped += rows
            return
        # The C collector's buffers are kept as they are (no copy): what they hold counts.
        size += sum(
            sys.getsizeof(p) - len(p) for ps in files.values() for p in ps if type(p) is bytearray
        )
        deferred = any(isinstance(p, frame.Large) for ps in files.values() for p in ps)
        if not deferred:  # joined here: see the module's docstring
            for where, pieces in files.items():
                data = pieces[0] if len(pieces) == 1 else b"".join(pieces)  # type: ignore[arg-type]
                files[where] = frame.framed(data)  # type: ignore[arg-type, assignment]
        self._added += rows
        self._added_bytes += size
        self._pending.append((files, rows, size, deferred))

    def _stream(self, spec: FunctionSpec, instance: object | None) -> str:
        if instance is not None:
            try:
                found = self._streams.get(instance)
                if found is None:
                    found = self._streams[instance] = new_stream_key()
                return found
            except TypeError:  # an instance that cannot be weakly referenced
                pass
        found = self._default_streams.get(spec.name)
        if found is None:
            found = self._default_streams[spec.name] = new_stream_key()
        return found

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="skylift-logs", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is pending and stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
        self._close_files()

    def _run(self) -> None:
        # Each wake-up, and each return from a system call, takes the GIL from the busy
        # event loop (which costs it far more than the write): one wake per interval,
        # one `write` per stream, nothing when no frame waits.
        while not self._stop.wait(self.interval):
            try:
                self.flush()
                if time.monotonic() - self._last_sweep > SWEEP_EVERY:
                    self.sweep()
            except OSError as exc:
                self._close_files()  # opened again, or anew, by the next write
                if not is_disk_full(exc):
                    logger.exception("writing logs under %s failed", self.directory)
                elif time.monotonic() - self._disk_full_noted > 60:  # said once a minute
                    self._disk_full_noted = time.monotonic()
                    logger.warning(
                        "writing logs under %s failed: no space is left on its disk; "
                        "invocation logs are dropped until space is freed",
                        self.directory,
                    )
            except Exception:  # nothing must end logging for good
                logger.exception("writing logs under %s failed", self.directory)

    def flush(self) -> None:
        """Write every pending invocation's events (called by the thread, and at close)."""
        taken = len(self._pending)
        if not taken:
            return
        batches = self._pending[:taken]
        del self._pending[:taken]  # what the loop appended meanwhile stays
        files: dict[tuple[str, str], list[bytes]] = {}
        for found, count, size, deferred in batches:
            self._taken += count
            self._taken_bytes += size
            for key, held in found.items():
                if deferred:
                    data = b"".join(p.digest() if isinstance(p, frame.Large) else p for p in held)
                    chunks = frame.framed(data)
                else:
                    chunks = held  # type: ignore[assignment]
                out = files.get(key)
                if out is None:
                    files[key] = chunks
                else:
                    out += chunks
        for (function, stream), pieces in files.items():
            self._append(function, stream, pieces if len(pieces) <= WRITEV else [b"".join(pieces)])

    def _append(self, function: str, stream: str, chunks: list[bytes]) -> None:
        # A stream's file stays open between writes (one syscall a batch, not four); the
        # sweep closes them all, so a file removed meanwhile is created again.
        key = (function, stream)
        size = sum(map(len, chunks))
        found = self._files.get(key)
        if found is not None and found[1] and found[1] + size > self.retention.segment_bytes:
            os.close(found[0])
            del self._files[key]
            self._segments[key] = self._segments.get(key, 0) + 1
            found = None
        if found is None:
            found = self._open(function, stream, size)
        # O_APPEND: a reader following the file sees whole frames appear at its end.
        try:
            _write(found[0], chunks, size)
        except OSError:
            self._cut_short(key, found, chunks)
            raise
        found[1] += size

    def _cut_short(self, key: tuple[str, str], found: list[int], chunks: list[bytes]) -> None:
        """After a write cut short (a full disk): the whole frames it wrote stay (a
        follower may have read them), the part of one goes, so that the next frames
        follow whole ones. If not even that works, the stream goes on in a new segment."""
        try:
            written = os.fstat(found[0]).st_size - found[1]
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            whole = 0
            while (length := frame.whole_frame(data, whole)) is not None:
                if whole + length > written:
                    break
                whole += length
            if written > whole:
                os.ftruncate(found[0], found[1] + whole)
            found[1] += whole
        except OSError:
            self._segments[key] = self._segments.get(key, 0) + 1

    def _open(self, function: str, stream: str, adding: int) -> list[int]:
        """The stream's current segment, open for appending: [fd, size]."""
        if len(self._files) >= MAX_OPEN:
            self._close_files()
        group = self.directory / function
        key = (function, stream)
        number = self._segments.setdefault(key, 0)
        path = group / layout.file_name(stream, number)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
            group.mkdir(parents=True, exist_ok=True)
        if size and size + adding > self.retention.segment_bytes:
            number += 1
            self._segments[key] = number
            path = group / layout.file_name(stream, number)
            size = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        found = self._files[key] = [fd, size]
        return found

    def _close_files(self) -> None:
        files, self._files = self._files, {}
        for fd, _ in files.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def sweep(self, now: float | None = None) -> int:
        """Apply retention; returns how many files it removed."""
        self._last_sweep = time.monotonic()
        self._close_files()  # a removed file must not be written on
        now = time.time() if now is None else now
        removed = 0
        for function in layout.functions(self.directory):
            files = []
            for _, path in layout.log_files(self.directory, function):
                try:
                    info = path.stat()
                except FileNotFoundError:
                    continue
                files.append((info.st_mtime, layout.segment(path), info.st_size, path))
            files.sort()  # oldest first; a stream's segments in order when written together
            total = sum(size for _, _, size, _ in files)
            for mtime, _, size, path in files:
                if now - mtime <= self.retention.max_age and total <= self.retention.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= size
                removed += 1
                # A stream that goes on writes its next segment, never a file of the
                # removed one's name: a follower's offset in it would point elsewhere.
                # (Only this server's streams: a removed file of an earlier one's is not.)
                key = (function, layout.stream_key(path))
                number = layout.segment(path)
                if key in self._segments and number >= self._segments[key]:
                    self._segments[key] = number + 1
        return removed


def _write(fd: int, chunks: list[bytes], size: int) -> None:
    """Append the chunks (`size` bytes), all of them, in one write if the kernel takes it."""
    data = chunks[0]
    if len(chunks) > 1:
        written = os.writev(fd, chunks)
        if written == size:
            return
        data = b"".join(chunks)[written:]  # cut short: the rest, in order
    view = memoryview(data)
    while view:  # a write cut short (a signal, a nearly full disk): the rest, in order
        view = view[os.write(fd, view) :]


def _nothing() -> None:
    """A collector's `arm` and `full` where the store packs a batch itself."""


def new_stream_key() -> str:
    """A new stream's file key: today's date and 32 hex digits, as Lambda names streams."""
    return datetime.now(UTC).strftime("%Y-%m-%d-") + secrets.token_hex(16)
