"""Kill -9 the server in the middle of a run: every message accepted before the kill is
processed at least once after a restart. (Full size: `make bench`.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from skylift.queues.protocol import OutgoingMessage
from skylift.queues.sqlite import SqliteQueues

MESSAGES = 3000

APP = """
import os
from skylift import App

app = App()
app.declare_queue("work", visibility_timeout=2)
DONE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "done.txt")


@app.queue("work", batch_size=10)
def work(event, context):
    # One write per batch, appended: what was written survives the kill of the server.
    with open(DONE, "a") as f:
        f.write("".join(r["body"] + "\\n" for r in event["Records"]))
"""


def start(app: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        # --sandbox off: the handler records what it processed in a file beside its code.
        [
            sys.executable,
            "-m",
            "skylift.cli",
            "up",
            str(app),
            "--port",
            "0",
            "--quiet",
            "--sandbox",
            "off",
        ],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until it serves (queues created, pollers running)
        if "serving on" in line:
            return proc
    raise AssertionError(f"skylift up did not start: exit {proc.wait()}")


def stop(proc: subprocess.Popen[str], sig: int) -> None:
    os.kill(proc.pid, sig)
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()


def processed(app: Path) -> list[str]:
    path = app / "done.txt"
    return path.read_text().split() if path.exists() else []


async def send_all(db: Path) -> None:
    queues = SqliteQueues(db)
    try:
        for start_at in range(0, MESSAGES, 10):
            batch = [OutgoingMessage(str(i)) for i in range(start_at, start_at + 10)]
            await queues.send("work", batch)  # accepted once this returns
    finally:
        await queues.close()


async def pending(db: Path) -> int:
    queues = SqliteQueues(db)
    try:
        stats = await queues.stats("work")
        return stats.visible + stats.in_flight + stats.delayed
    finally:
        await queues.close()


def test_no_accepted_message_is_lost_when_the_server_is_killed(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    db = tmp_path / ".skylift" / "queues.db"
    server = start(tmp_path)
    asyncio.run(send_all(db))
    deadline = time.monotonic() + 30
    while len(processed(tmp_path)) < MESSAGES // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop(server, signal.SIGKILL)  # mid-run: some batches in flight, most not yet taken
    at_kill = len(processed(tmp_path))
    assert 0 < at_kill < MESSAGES, "the kill must land in the middle of the run"

    server = start(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(pending(db)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(server, signal.SIGTERM)
    seen = processed(tmp_path)
    missing = set(map(str, range(MESSAGES))) - set(seen)
    assert not missing, f"{len(missing)} accepted messages were never processed"
    duplicates = len(seen) - len(set(seen))
    print(f"killed after {at_kill} of {MESSAGES}; duplicates after restart: {duplicates}")
    assert duplicates <= MESSAGES // 10  # only batches in flight at the kill come back
