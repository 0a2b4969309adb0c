"""A scheduled backup that fails raises an alert through the notifiers (the log, a
webhook, Slack), listed by `skylift alerts`; the next one that passes resolves it.

The failure is real: the backup folder is a read-only tmpfs (root can write anywhere
else). Mounting needs root: without it the test skips, and under CI=true it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from observe_support import eventually, skylift
from webhooks import webhook_server

from skylift.testing import serve

HERE = Path(__file__).parent
POLICY = """\
[alerts]
retry_backoff = "0.05s"

[alerts.primary]
name = "alice"
webhook = "{url}/alice"

[[alerts.channels]]
name = "#ops"
slack = "{url}/ops"
"""


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "backups"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,ro", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs in CI: {mounted.stderr!r}")
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def scheduled_backup(folder: Path, app: Path, until: str) -> list[str]:
    """Run `skylift backup --schedule` until it prints `until`; its stderr lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "backup", str(folder), str(app),
         "--schedule", "rate(1 hour)"],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if until in line:
                break
    finally:
        # SIGTERM, as a process manager stops it (SIGINT may be ignored when the suite
        # itself runs in the background, and is then inherited as ignored).
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:
                proc.kill()  # never leaked into the next test
                proc.wait()
            proc.stderr.close()
    assert code == 0, f"skylift backup --schedule did not stop on SIGTERM: exit {code}"
    return lines


def test_a_backup_that_cannot_be_written_pages_and_the_next_good_one_resolves(
    tmp_path: Path, read_only: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(HERE / "alerting_app.py", app / "app.py")  # it declares a queue: state
    with webhook_server() as hooks:
        (app / "skylift.toml").write_text(POLICY.format(url=hooks.url))
        with serve(str(app), options=["--quiet"]):
            lines = scheduled_backup(read_only, app, "raised")
            text = "".join(lines)
            assert "backup FAILED" in text and "Read-only file system" in text, text
            # The log notifier: the page line, and who it went to.
            assert "the scheduled backup into" in text and "-> alice, #ops" in text
            page = eventually(lambda: hooks.to("/alice"), 10)[0]
            assert (page["event"], page["alert"]["kind"]) == ("page", "backup")
            assert page["alert"]["subject"] == str(read_only)
            assert "Read-only file system" in page["alert"]["detail"]
            slack = eventually(lambda: hooks.to("/ops"), 10)[0]
            assert slack["text"].startswith("[PAGE] alert ")
            listed = skylift("alerts", "--app", str(app))
            assert listed.returncode == 0
            assert f"backup {read_only}" in listed.stdout and "alice" in listed.stdout

            # The folder can be written again: the next backup passes and resolves it.
            remounted = subprocess.run(["mount", "-o", "remount,rw", str(read_only)])
            assert remounted.returncode == 0
            lines = scheduled_backup(read_only, app, "resolved")
            assert "test-restored" in "".join(lines)
        resolved = eventually(lambda: [b for b in hooks.to("/alice") if b["event"] == "resolve"])
        assert resolved[0]["alert"]["resolved_by"] == "skylift: the next backup passed"
    done = skylift("alerts", "--app", str(app), "--json")
    (alert,) = json.loads(done.stdout)
    assert (alert["kind"], alert["state"], alert["severity"]) == ("backup", "resolved", "page")
    assert [d["event"] for d in alert["deliveries"]].count("page") == 2  # alice and #ops
