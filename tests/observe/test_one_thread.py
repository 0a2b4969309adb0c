"""`skylift up` observes on its event loop's thread alone: stored logs and events are
written by the loop, not by threads of their own, because a second thread in the server
cost it requests a second (observability.md, "A ninth look")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
from observe_support import HERE, eventually, skylift

from skylift import server_file
from skylift.observe.events import events_file
from skylift.testing import serve


def test_the_server_writes_logs_and_events_with_no_thread_of_its_own(tmp_path: Path) -> None:
    shutil.copy(HERE / "observed_app.py", tmp_path / "app.py")
    with serve(str(tmp_path), options=["--quiet"]) as url:
        request_id = httpx.get(url + "/hello", timeout=30).text
        announced = json.loads((tmp_path / ".skylift" / server_file.NAME).read_text())
        tasks = Path(f"/proc/{announced['pid']}/task")
        # Written by the loop: the invocation's lines, and its cold start for describe.
        eventually(lambda: request_id in skylift("logs", "hello", str(tmp_path)).stdout)
        eventually(lambda: events_file(tmp_path / ".skylift", "hello").exists())
        threads = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
        assert len(threads) == 1, threads
