"""An external S3 endpoint that accepts connections and never answers: ``S3Store``'s
calls wait on the store's own threads, so asyncio's default pool (the folder store, the
S3 API's body writes) carries on, and the store's calls end in ``ServiceUnavailable``
when their read timeout passes."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skylift.storage.directory import DirectoryStore
from skylift.storage.errors import ServiceUnavailable
from skylift.storage.s3_store import S3Store
from skylift.storage.s3_url import parse
from storage.s3_server import CREDENTIALS

SHARED_THREADS = 2  # asyncio's default pool, made small: what a hung endpoint could fill
HUNG_CALLS = 4


class Silent:
    """A TCP server on loopback that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.held.append(connection)
            self.accepted.release()

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Silent]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = Silent()
    yield server
    server.close()


def test_a_hung_endpoint_stalls_only_the_stores_own_calls(silent: Silent, tmp_path: Path) -> None:
    target = parse(f"s3+http://127.0.0.1:{silent.port}/sky-")
    store = S3Store(target, spool=tmp_path / "spool", read_timeout=3)
    folder = DirectoryStore(tmp_path / "objects")

    async def folder_work() -> bytes:
        await folder.create_bucket("local")
        await folder.put_object("local", "k", b"still served")
        return (await folder.get_object("local", "k"))[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(SHARED_THREADS))
        hung = [asyncio.create_task(store.head_object("bkt", f"k{n}")) for n in range(HUNG_CALLS)]
        # Wait until as many calls as the shared pool has threads are in the endpoint's
        # hands (all of them, had they run there).
        # (Polled on the loop: the shared pool may be the one that is stuck.)
        for _ in range(SHARED_THREADS):
            for _ in range(6000):
                if silent.accepted.acquire(blocking=False):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the store's calls never reached the endpoint")
        work = asyncio.create_task(folder_work())
        done, _ = await asyncio.wait([work, *hung], return_when=asyncio.FIRST_COMPLETED)
        assert work in done, "the folder store waited for the hung endpoint"
        assert not any(call.done() for call in hung)
        assert await work == b"still served"
        for call in hung:
            with pytest.raises(ServiceUnavailable) as caught:
                await call
            assert "unreachable" in (caught.value.hint or "")
            assert caught.value.status == 503

    try:
        asyncio.run(main())
    finally:
        store.close()
