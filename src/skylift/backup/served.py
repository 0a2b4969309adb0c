"""`POST /_skylift/backup` on the control API: the running server takes a backup of its
own state and streams the archive back, for `skylift backup FILE --url URL`.

It is the same snapshot `skylift backup FILE APP` takes from the files (see
`snapshot.py`), taken by the server's process in a worker thread while the event loop
goes on serving: SQLite's online backup reads each database as of one read transaction
and objects are copied as one version each, so the server takes traffic throughout. The
archive is written to a scratch folder in the state folder (the one place a container
lets skylift write), streamed with its length, then removed. One backup at a time: a
second request meanwhile gets 409. Like every control API path, it needs the server's
token when the server has one (`gateway/guard.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import orjson

from skylift.asgi_types import Asgi, Receive, Scope, Send
from skylift.backup.archive import BackupError
from skylift.loader import AppTarget, Target
from skylift.spec import CONTROL_PREFIX

PATH = CONTROL_PREFIX + "backup"
CONTENT_TYPE = b"application/x-tar"
_CHUNK = 1 << 20

logger = logging.getLogger("skylift.backup")


def app_files(target: Target) -> tuple[Path, list[Path]]:
    """(the app's state folder, its definition file): what a backup of `target` holds."""
    if isinstance(target, AppTarget):
        home = Path(target.code_dir)
        module = home / (target.module.replace(".", "/") + ".py")
        return home / ".skylift", [module] if module.is_file() else []
    return Path(target.path).parent / ".skylift", [Path(target.path)]


class BackupApi:
    """Answers `POST /_skylift/backup` with an archive; passes anything else to `inner`."""

    def __init__(
        self,
        state_dir: Path,
        config: Sequence[Path],
        redis_url: str | None,
        inner: Asgi,
    ) -> None:
        self.state_dir = state_dir
        self.config = list(config)
        self.redis_url = redis_url
        self.inner = inner
        self.busy = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.inner(scope, receive, send)
            return
        await _drain(receive)
        if scope["method"] != "POST":
            await _json(send, 405, f"{PATH} answers POST (take a backup), not {scope['method']}")
            return
        if self.busy:
            await _json(send, 409, "a backup is being taken already: try again when it is done")
            return
        self.busy = True
        try:
            await self._backup(send)
        finally:
            self.busy = False

    async def _backup(self, send: Send) -> None:
        from skylift.backup import snapshot

        self.state_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".backup-", dir=self.state_dir))
        try:
            archive = scratch / "backup.tar"
            try:
                manifest = await asyncio.to_thread(
                    snapshot.take,
                    self.state_dir,
                    archive,
                    config=self.config,
                    redis_url=self.redis_url,
                )
            except (BackupError, OSError) as exc:
                logger.error("a backup asked for over the control API failed: %s", exc)
                await _json(send, 500, f"the backup failed: {exc}")
                return
            size = archive.stat().st_size
            logger.info("backup over the control API: %d bytes, %s", size, manifest.summary)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", CONTENT_TYPE),
                        (b"content-length", str(size).encode()),
                        (b"content-disposition", b'attachment; filename="skylift-backup.tar"'),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            with archive.open("rb") as f:
                while chunk := await asyncio.to_thread(f.read, _CHUNK):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(scratch)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _json(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
