"""Scaling and overload, through a real `skylift up` (issue 3's benchmarks).

- Scale-up: from zero warm instances, 32 concurrent requests to a handler that sleeps
  200 ms: how long until all 32 are running, and the total wall time.
- Overload: 10x a function's reserved concurrency for 10 s with wrk: every response is
  a 200 or a 429, and the server's memory before and after.

    python bench/concurrency_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from report import write_section

APP = """
import time
from skylift import App

app = App()


@app.http("/sleep", methods=["GET"])
def sleep(event, context):
    started = time.time()
    time.sleep(0.2)
    return {"started": started}


@app.http("/fast", methods=["POST"])
def fast(event, context):
    return {"ok": True}


@app.http("/limited", methods=["GET"], max_concurrency=4)
def limited(event, context):
    time.sleep(0.2)
    return {"ok": True}
"""

COUNT_LUA = """
statuses = {}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("STATUS %d %d\\n", status, n))
  end
end
"""


def start(app: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    """`skylift up APP` on a free port, with more `options`; the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "0", "--quiet", *options],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving on" in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
    raise RuntimeError(f"skylift up did not start: exit {proc.wait()}")


def stop(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(30)
    if proc.stderr:
        proc.stderr.close()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of the server, its zygotes and their workers, in MB."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in out.stdout.splitlines():
        p, parent, kb = map(int, line.split())
        children.setdefault(parent, []).append(p)
        rss[p] = kb
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total / 1024


async def scale_up(url: str, n: int) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
        # Open the connections first, so the measurement is the platform's, not TCP's.
        await asyncio.gather(*(client.get(url + "/--warm-connections--") for _ in range(n)))
        sent = time.time()
        responses = await asyncio.gather(*(client.get(url + "/sleep") for _ in range(n)))
        finished = time.time()
    starts = [r.json()["started"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    return max(starts) - sent, finished - sent


def overload(url: str, connections: int, seconds: int) -> dict[int, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(COUNT_LUA)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                script.name,
                url + "/limited",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return {int(s): int(n) for s, n in re.findall(r"STATUS (\d+) (\d+)", out)}


POST_LUA = """
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
"""


def rps(url: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(POST_LUA)
    try:
        subprocess.run(
            ["wrk", "-t2", "-c32", "-d2s", "-s", script.name, url], capture_output=True, check=True
        )
        out = subprocess.run(
            ["wrk", "-t2", "-c32", "-d5s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors while measuring {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        (app / "app.py").write_text(textwrap.dedent(APP))
        server, url = start(app)
        try:
            running, wall = asyncio.run(scale_up(url, 32))
            httpx.get(url + "/limited")  # its first instance, so "before" is a warm server
            before = tree_rss_mb(server.pid)
            statuses = overload(url, 40, 10)
            after = tree_rss_mb(server.pid)
            route = rps(url + "/fast")
            invoke = rps(url + "/2015-03-31/functions/fast/invocations")
        finally:
            stop(server)
    other = {s: n for s, n in statuses.items() if s not in (200, 429)}
    text = "\n".join(
        [
            "## Concurrency: scale-up from zero and overload",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            "cores. Command: `make bench` (`python bench/concurrency_bench.py`).",
            "",
            "| measurement | result | target |",
            "|---|---:|---|",
            f"| 32 concurrent requests to a 200 ms handler, no warm instance: all 32 running "
            f"after | {running * 1000:.0f} ms | <= 1 s |",
            f"| same: total wall time | {wall * 1000:.0f} ms | <= 200 ms + 500 ms |",
            f"| 10x reserved concurrency (4) for 10 s, wrk -c40: 200s | "
            f"{statuses.get(200, 0):,} | |",
            f"| same: 429s | {statuses.get(429, 0):,} | |",
            f"| same: any other status | {sum(other.values())} | 0 |",
            f"| server RSS (supervisor, zygote, workers) before / after | {before:.0f} MB / "
            f"{after:.0f} MB | bounded |",
            f"| Invoke API (POST .../functions/fast/invocations), wrk -c32 | "
            f"{invoke:,.0f} req/s | |",
            f"| same handler through its HTTP route (POST /fast), wrk -c32 | "
            f"{route:,.0f} req/s | |",
        ]
    )
    print(text)
    if other:
        print(f"unexpected statuses: {other}", file=sys.stderr)
    if args.out:
        write_section(args.out, "concurrency", text)


if __name__ == "__main__":
    main()
