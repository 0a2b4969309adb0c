"""`skylift backup FILE --url URL`: a running server backs up its own state over its
control API while it takes traffic, behind the server's token."""

from __future__ import annotations

import hashlib
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from backup_helpers import client, drain, skylift, write_app
from test_backup_under_load import Load

from skylift.testing import serve

TOKEN = "backup-test-token-5f0c"


def test_a_backup_over_http_under_load_restores_what_was_acknowledged_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "app")
    archive = tmp_path / "backups" / "remote.tar"
    monkeypatch.setenv("SKYLIFT_TOKEN", TOKEN)  # the server requires it on every control call
    with serve(str(app), options=["--quiet"]) as url:
        s3 = client("s3", url)
        s3.put_object(Bucket="files", Key="first.txt", Body=b"before any load")

        # Without the token: refused by the guard, and no file is written.
        monkeypatch.delenv("SKYLIFT_TOKEN")
        refused = skylift("backup", str(archive), "--url", url, check=False)
        assert refused.returncode == 2
        assert "needs its token; set SKYLIFT_TOKEN" in refused.stderr
        assert not archive.exists() and not list(archive.parent.glob(".*partial*"))
        monkeypatch.setenv("SKYLIFT_TOKEN", TOKEN)

        with Load(url) as load:
            while len(load.objects) < 10 or len(load.messages) < 200:
                time.sleep(0.05)
            began = time.monotonic()
            done = skylift("backup", str(archive), "--url", url)
            ended = time.monotonic()
            time.sleep(0.2)
        assert any(began < acked < ended for acked, _ in load.messages)  # traffic went on
        assert f"backed up to {archive}" in done.stdout and "messages" in done.stdout
        # The server's scratch copy is gone once sent.
        assert not list((app / ".skylift").glob(".backup-*"))

    skylift("restore", str(archive), "--verify-only")
    fresh = tmp_path / "restored"
    skylift("restore", str(archive), "--to", str(fresh))
    assert (fresh / "app.py").read_text() == (app / "app.py").read_text()
    with serve(str(fresh), options=["--quiet"]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        bodies = [m["Body"] for m in drain(sqs, "work")]
        assert len(bodies) == len(set(bodies))
        before = {b for acked, b in load.messages if acked < began}
        assert before <= set(bodies), f"lost {len(before - set(bodies))} messages"
        assert not {b for acked, b in load.messages if acked > ended} & set(bodies)
        assert s3.get_object(Bucket="files", Key="first.txt")["Body"].read() == b"before any load"
        for acked, key, digest in load.objects:
            if acked < began:
                body = s3.get_object(Bucket="files", Key=key)["Body"].read()
                assert hashlib.sha256(body).hexdigest() == digest, key


def test_the_endpoint_takes_only_post_and_only_with_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "app")
    monkeypatch.setenv("SKYLIFT_TOKEN", TOKEN)
    with serve(str(app), options=["--quiet"]) as url:
        endpoint = url + "/_skylift/backup"

        def call(method: str, token: str | None) -> tuple[int, bytes, str]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            request = urllib.request.Request(endpoint, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, response.read(), response.headers["Content-Type"]
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read(), exc.headers["Content-Type"]

        assert call("POST", None)[0] == 403
        assert call("POST", "wrong")[0] == 403
        status, body, _ = call("GET", TOKEN)
        assert status == 405 and b"answers POST" in body
        status, body, kind = call("POST", TOKEN)
        assert (status, kind) == (200, "application/x-tar")
        archive = tmp_path / "direct.tar"
        archive.write_bytes(body)
        checked = skylift("restore", str(archive), "--verify-only")
        assert "checksums match" in checked.stdout


def test_no_server_or_a_mixed_request_is_a_clear_error_writing_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    archive = tmp_path / "b.tar"
    done = skylift("backup", str(archive), "--url", f"http://127.0.0.1:{port}", check=False)
    assert done.returncode == 2 and "no skylift server answers at" in done.stderr
    mixed = skylift("backup", str(archive), str(tmp_path), "--url", "http://x", check=False)
    assert mixed.returncode == 2 and "leave out APP" in mixed.stderr
    assert not archive.exists()
