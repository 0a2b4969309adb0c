"""`skylift backup FILE --url URL`: ask a running server for a backup of its state
(`POST /_skylift/backup`, see `served.py`) and keep it only once it verifies.

The archive is streamed to a partial file beside FILE, checked in full (every member's
SHA-256, as `skylift restore --verify-only` does), then renamed to FILE: FILE is never a
truncated or damaged archive, and an earlier FILE stays until a good one replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from skylift.backup import archive
from skylift.backup.archive import BackupError, Manifest
from skylift.backup.served import PATH

TIMEOUT = 600.0  # seconds without a byte: a large state takes a while to snapshot
_CHUNK = 1 << 20


def fetch(url: str, file: Path, token: str | None = None) -> Manifest:
    """Back up the server at `url` into the archive `file`; return its manifest.

    Raises BackupError saying what went wrong (no server, no token, a failed backup, a
    damaged transfer); `file` is then untouched.
    """
    endpoint = url.rstrip("/") + PATH
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(endpoint, data=b"", method="POST", headers=headers)
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.parent / f".{file.name}.partial-{os.getpid()}"
    try:
        try:
            with (
                urllib.request.urlopen(request, timeout=TIMEOUT) as response,
                partial.open("wb") as out,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise BackupError(_refusal(endpoint, exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackupError(
                f"no skylift server answers at {url} ({reason}): check --url, or start "
                "the server with `skylift up`"
            ) from None
        try:
            manifest = archive.verify(partial)
        except BackupError as exc:
            raise BackupError(f"the archive {url} sent did not verify: {exc}") from None
        partial.replace(file)
        return manifest
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _refusal(endpoint: str, exc: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(exc.read() or b"{}")
        said = document.get("message") or document.get("Message") or ""
    except ValueError:
        said = ""
    if exc.code == 403:
        return (
            f"{endpoint} refused the backup ({said or 'forbidden'}): the server needs its "
            "token; set SKYLIFT_TOKEN to it"
        )
    if exc.code == 404:
        return f"{endpoint} is not there: is this a skylift server, and one this recent?"
    return f"{endpoint} answered {exc.code}: {said or exc.reason}"
