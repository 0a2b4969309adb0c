"""Rolling backups: `skylift backup --schedule ... --keep N` backs up, test-restores each
backup right after writing it, and keeps the newest N."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_helpers import client, skylift, write_app

from skylift.backup import rolling, snapshot
from skylift.backup.archive import Manifest
from skylift.testing import serve

COMMAND = [sys.executable, "-m", "skylift.cli", "backup"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app whose state holds a few messages and objects (its server stopped)."""
    app = write_app(tmp_path_factory.mktemp("scheduled") / "app")
    with serve(str(app), options=["--quiet"]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        sqs.send_message(QueueUrl=work, MessageBody="kept")
        s3.put_object(Bucket="files", Key="a.txt", Body=b"alpha")
    return app


def take(app: Path) -> Callable[[Path], Manifest]:
    return lambda path: snapshot.take(app / ".skylift", path, config=[app / "app.py"])


def test_the_scheduled_process_backs_up_at_once_and_test_restores(
    app: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    with serve(str(app), options=["--quiet"]):
        proc = subprocess.Popen(
            [*COMMAND, str(folder), str(app), "--schedule", "rate(1 hour)", "--keep", "3"],
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            # Where it hangs, if it does: SIGABRT below makes it print every thread's stack.
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        assert proc.stderr is not None
        lines = []
        try:
            for line in proc.stderr:
                lines.append(line)
                if "test-restored" in line or "FAILED" in line:
                    break
        finally:
            # SIGTERM, as a process manager stops it: the suite run in the background
            # hands its children SIGINT ignored, and Python then leaves it so.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # it dies, its stderr then ends
                rest = proc.stderr.read()
                proc.wait()
                pytest.fail(f"SIGTERM did not stop it within 30 s:\n{''.join(lines)}{rest}")
            finally:
                if proc.poll() is None:  # never leaked into the next test
                    proc.kill()
                    proc.wait()
                proc.stderr.close()
    assert "test-restored" in lines[-1], lines
    assert "1 message" in lines[-1] and "1 object" in lines[-1]
    (written,) = folder.glob("skylift-backup-*.tar")
    assert "checksums match" in skylift("restore", str(written), "--verify-only").stdout


def test_only_the_newest_are_kept(app: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    outcomes = []
    for _ in range(4):
        outcomes.append(rolling.tick(folder, 2, take(app)))
        time.sleep(0.01)
    assert all(o.error is None for o in outcomes)
    kept = sorted(folder.glob("skylift-backup-*.tar"))
    assert kept == [outcomes[2].path, outcomes[3].path]
    assert outcomes[3].removed == [outcomes[1].path]


def test_a_backup_that_fails_its_test_restore_is_reported_and_set_apart(
    app: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    good = rolling.tick(folder, 1, take(app))

    def take_then_damage(path: Path) -> Manifest:
        manifest = take(app)(path)
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0xFF  # the disk it was written to lost a bit
        path.write_bytes(bytes(data))
        return manifest

    bad = rolling.tick(folder, 1, take_then_damage)
    assert bad.error is not None and ("checksum" in bad.error or "damaged" in bad.error)
    # The good one is kept: a failure does not count among the backups to keep.
    failed = bad.path.with_name(bad.path.name + ".failed")
    assert set(folder.iterdir()) == {failed, good.path}


def test_bad_options_are_refused(app: Path, tmp_path: Path) -> None:
    wrong = skylift(
        "backup", str(tmp_path / "b"), str(app), "--schedule", "every hour", check=False
    )
    assert wrong.returncode == 2 and "rate(value unit)" in wrong.stderr, wrong.stderr
    alone = skylift("backup", str(tmp_path / "b.tar"), str(app), "--keep", "3", check=False)
    assert alone.returncode == 2 and "--keep goes with --schedule" in alone.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.tar").exists()
