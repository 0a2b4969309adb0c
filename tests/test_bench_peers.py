"""`make bench`'s peers serve the same body as skylift, and stop without leftovers.

Runs `bench/http_bench.py --check`: each peer is started as the bench starts it, sent one
POST /change, and stopped by its process group. Peers whose packages are not installed
(the `bench` extra; serverless, which needs npm) are skipped, as the bench records them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
PYTHON_PEERS = ["skylift", "fastapi", "flask-gunicorn", "flask-dev", "chalice", "asgi"]


def test_every_installed_peer_answers_as_skylift_and_stops_cleanly() -> None:
    peers = list(PYTHON_PEERS)
    # serverless runs only where bench/.node holds it: the check must not npm install.
    if shutil.which("node") and (BENCH / ".node" / "node_modules" / "serverless-offline").is_dir():
        peers.append("serverless")
    done = subprocess.run(
        [sys.executable, "http_bench.py", "--check", "--peers", ",".join(peers)],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(BENCH)},
    )
    verdicts = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert set(verdicts) == set(peers), done.stdout + done.stderr
    # skylift itself and the stdlib-only ceiling always run; the others when installed.
    for always in ("skylift", "asgi"):
        assert verdicts[always] == "same body as skylift", verdicts
    for name, verdict in verdicts.items():
        if verdict.startswith("not runnable:") and "is not installed" in verdict:
            continue  # the bench extra is not installed here (CI installs test and lint)
        assert verdict == "same body as skylift", f"{name}: {verdict}"
    assert done.returncode == 0, done.stdout + done.stderr
