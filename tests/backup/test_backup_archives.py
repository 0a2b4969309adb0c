"""Damaged, truncated and foreign archives are refused before anything is restored;
`--verify-only` checks an archive and writes nothing."""

from __future__ import annotations

import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from backup_helpers import client, skylift, snapshot_tree, write_app

from skylift.testing import serve


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A backup of an app with messages and objects, taken from a running server."""
    root = tmp_path_factory.mktemp("archive")
    app = write_app(root / "app")
    with serve(str(app), options=["--quiet"]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        for i in range(5):
            sqs.send_message(QueueUrl=work, MessageBody=f"m{i}")
        for i in range(3):
            s3.put_object(Bucket="files", Key=f"docs/{i}.txt", Body=b"x" * 5000 * (i + 1))
        s3.put_object(Bucket="files", Key="k" * 300, Body=b"a key longer than a file name")
        path = root / "backup.tar"
        skylift("backup", str(path), str(app))
    yield path


def member_offset(path: Path, prefix: str) -> tuple[int, int]:
    """(offset of the data, size) of the first member whose name starts with `prefix`."""
    with tarfile.open(path) as tar:
        for info in tar:
            if info.name.startswith(prefix):
                return info.offset_data, info.size
    raise AssertionError(f"no member {prefix}")


def damaged(archive: Path, tmp_path: Path, offset: int) -> Path:
    copy = tmp_path / "damaged.tar"
    shutil.copy(archive, copy)
    data = bytearray(copy.read_bytes())
    data[offset] ^= 0xFF
    copy.write_bytes(bytes(data))
    return copy


def refused(archive: Path, target: Path, words: str, *, damaged: bool = True) -> None:
    """A restore into `target` fails with `words` and leaves `target` as it was; a
    damaged archive fails `--verify-only` too."""
    before = snapshot_tree(target) if target.exists() else None
    done = skylift("restore", str(archive), "--to", str(target), check=False)
    assert done.returncode == 2, done.stdout
    assert words in done.stderr, done.stderr
    assert "nothing was restored" in done.stderr
    if before is None:
        assert not target.exists()
    else:
        assert snapshot_tree(target) == before
    if not damaged:
        return
    verified = skylift("restore", str(archive), "--verify-only", check=False)
    assert verified.returncode == 2 and words in verified.stderr, verified.stderr


def test_verify_only_checks_every_checksum_and_writes_nothing(
    archive: Path, tmp_path: Path
) -> None:
    before = snapshot_tree(archive.parent)
    done = skylift("restore", str(archive), "--verify-only")
    assert "checksums match" in done.stdout
    assert "1 queue" not in done.stdout and "2 queues, 5 messages" in done.stdout
    assert "4 objects" in done.stdout
    assert snapshot_tree(archive.parent) == before


@pytest.mark.parametrize("member", ["objects/", "sqlite/queues.db", "config/app.py"])
def test_a_flipped_byte_is_refused_and_nothing_is_touched(
    archive: Path, tmp_path: Path, member: str
) -> None:
    offset, size = member_offset(archive, member)
    bad = damaged(archive, tmp_path, offset + size // 2)
    target = write_app(tmp_path / "existing")  # a folder with the app, no state yet
    refused(bad, target, "does not match its checksum")
    refused(bad, tmp_path / "fresh", "does not match its checksum")


def test_a_damaged_manifest_is_refused(archive: Path, tmp_path: Path) -> None:
    offset, size = member_offset(archive, "manifest.json")
    bad = damaged(archive, tmp_path, offset + size // 2)
    refused(bad, tmp_path / "fresh", "manifest")


@pytest.mark.parametrize("keep", [0.5, 0.97, 0.9995])
def test_a_truncated_archive_is_refused(archive: Path, tmp_path: Path, keep: float) -> None:
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: int(len(data) * keep)])
    refused(cut, tmp_path / "fresh", "truncated")


def test_a_file_that_is_no_backup_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file at all" * 100)
    refused(junk, tmp_path / "fresh", "truncated or damaged")
    missing = skylift("restore", str(tmp_path / "nope.tar"), "--verify-only", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_folder_that_holds_state_is_left_alone(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    skylift("restore", str(archive), "--to", str(target))
    (target / ".skylift" / "objects" / "files" / "docs" / "@0.txt").write_bytes(b"changed")
    refused(archive, target, "already holds state", damaged=False)


def test_a_different_app_file_is_left_alone(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "other"
    target.mkdir()
    (target / "app.py").write_text("# another app\n")
    refused(archive, target, "differs from the backup's app.py", damaged=False)


def test_restored_objects_read_back_as_stored(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    done = skylift("restore", str(archive), "--to", str(target))
    assert "skylift up" in done.stdout
    with serve(str(target), options=["--quiet"]) as url:
        s3 = client("s3", url)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="files")["Contents"]]
        assert sorted(keys) == sorted([*(f"docs/{i}.txt" for i in range(3)), "k" * 300])
        body = s3.get_object(Bucket="files", Key="docs/2.txt")["Body"].read()
        assert body == b"x" * 15000
        assert s3.get_object(Bucket="files", Key="k" * 300)["Body"].read().startswith(b"a key")


def test_a_damaged_database_is_not_backed_up(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    state = app / ".skylift"
    state.mkdir()
    with sqlite3.connect(state / "queues.db") as db:
        db.execute("CREATE TABLE t (x)")
    (state / "databases").write_text("queues.db\n")
    done = skylift("backup", str(tmp_path / "b.tar"), str(app), check=False)
    assert done.returncode == 2
    assert "damaged" in done.stderr or "not a skylift database" in done.stderr, done.stderr
    assert not (tmp_path / "b.tar").exists()
    assert not list(tmp_path.glob(".b.tar*"))


def test_an_app_without_state_says_so(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    done = skylift("backup", str(tmp_path / "b.tar"), str(app), check=False)
    assert done.returncode == 2 and "no skylift state" in done.stderr, done.stderr


def test_a_lost_database_is_not_backed_up_as_absent(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    skylift("restore", str(archive), "--to", str(target))
    (target / ".skylift" / "queues.db").unlink()  # the restored marker remembers it
    done = skylift("backup", str(tmp_path / "b.tar"), str(target), check=False)
    assert done.returncode == 2 and "is missing" in done.stderr, done.stderr
    queues = skylift("queues", str(target), check=False)
    assert queues.returncode == 2 and "is missing" in queues.stderr, queues.stderr
