"""A key's write lock holds across processes when the store is shared (`--objects DIR`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from skylift.storage.key_locks import KeyLocks

HOLDER = """
    import sys, time
    from pathlib import Path
    from skylift.storage.key_locks import KeyLocks

    locks = KeyLocks(Path(sys.argv[1]), shared=sys.argv[2] == "shared")
    with locks.hold("photos", "a.jpg"):
        print("held", flush=True)
        time.sleep(1.0)
"""


def wait_behind_other_process(root: Path, mode: str) -> float:
    """Seconds this process waited for the key another process holds for 1 s."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(root), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with KeyLocks(root, shared=mode == "shared").hold("photos", "a.jpg"):
            waited = time.monotonic() - started
    finally:
        holder.wait(10)
        holder.stdout.close()
    return waited


def test_a_shared_store_waits_for_another_process_writing_the_key(tmp_path: Path) -> None:
    assert wait_behind_other_process(tmp_path, "shared") > 0.5


def test_an_unshared_store_locks_only_within_its_process(tmp_path: Path) -> None:
    assert wait_behind_other_process(tmp_path, "own") < 0.5
    locks = KeyLocks(tmp_path)
    order: list[str] = []

    def second() -> None:
        with locks.hold("photos", "a.jpg"):
            order.append("second")

    with locks.hold("photos", "a.jpg"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
