"""Hot reload: from an edit saved to the first response of the new code.

A small app is served by `skylift up`; each round rewrites its module with a new version
number and polls until a request answers with it.

    python bench/reload_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from report import write_section

from skylift.testing import serve

APP = """from skylift import App

app = App()
VERSION = {version}


@app.http("/v", methods=["GET"])
def version(event, context):
    return {{"v": VERSION}}
"""
ROUNDS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        (app / "app.py").write_text(APP.format(version=0))
        with serve(str(app), options=["--quiet"]) as url, httpx.Client(base_url=url) as client:
            for version in range(1, ROUNDS + 1):
                time.sleep(0.3)  # let the previous reload's old instances go
                saved = time.perf_counter()
                (app / "app.py").write_text(APP.format(version=version))
                deadline = saved + 30
                while client.get("/v").json() != {"v": version}:
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"version {version} was never served: the reload failed")
                    time.sleep(0.002)
                times.append((time.perf_counter() - saved) * 1000)
    text = "\n".join(
        [
            "## Hot reload: edit saved to the first response of the new code",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores. Command: `make bench` (`python bench/reload_bench.py`): {ROUNDS} edits of a "
            "one-function app under `skylift up`, each polled (every 2 ms) until it answers "
            "with the new version. It includes the watcher's debounce (inotify on Linux: "
            "a burst of changes ends 10 ms after its last one, at most 50 ms after its "
            "first) and the new zygote's init phase.",
            "",
            "| p50 | p90 | max | target |",
            "|---:|---:|---:|---:|",
            f"| {statistics.median(times):.0f} ms | {statistics.quantiles(times, n=10)[-1]:.0f} ms "
            f"| {max(times):.0f} ms | 100 ms |",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "reload", text)


if __name__ == "__main__":
    main()
