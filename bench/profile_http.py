"""Where a request's CPU goes, on both sides: py-spy profiles of skylift's supervisor, of
its busiest instance, and of FastAPI on uvicorn, each under wrk -t1 -c32 POST /change.

    python bench/profile_http.py --out docs/benchmarks.md [--seconds 10]

py-spy samples each process's Python stacks (`--nonblocking`, so the process is never
paused; `--gil`, so only samples of a thread holding the GIL count: a thread waiting in
a system call or for work is not running Python). A sample's leaf is the Python function
running, C it calls with the GIL held (uvloop's callbacks, orjson) included; time in the
kernel with the GIL released is not seen. Per process: the functions with the most leaf
samples, and the packages they belong to.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peer_servers
import proctree
from bench_common import EXPECTED, LUA, start_wrk
from http_bench import Started
from report import write_section

FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")
PACKAGES = (
    ("skylift/gateway/", "skylift.gateway (HTTP front, events)"),
    ("skylift/engine/", "skylift.engine (pool, instances)"),
    ("skylift/observe/", "skylift.observe"),
    ("skylift/runtime/", "skylift.runtime (the worker)"),
    ("skylift/", "skylift, other"),
    ("uvloop/", "uvloop"),
    ("asyncio/", "asyncio"),
    ("uvicorn/", "uvicorn"),
    ("starlette/", "starlette"),
    ("fastapi/", "fastapi"),
    ("pydantic", "pydantic"),
    ("make-change", "the handler"),
    ("app.py", "the handler"),
)


def busiest_child(root: int, seconds: float = 1.0) -> int:
    """The process under `root` (not itself) that used the most CPU in `seconds`."""
    before = {pid: proctree.process_cpu(pid) for pid in proctree.tree(root) if pid != root}
    time.sleep(seconds)
    used = {pid: proctree.process_cpu(pid) - cpu for pid, cpu in before.items()}
    return max(used, key=lambda pid: used[pid])


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` for `seconds` into `out` (collapsed stacks), started."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "-p", str(pid), "-d", str(seconds), "-r", "500"]
    command += ["--nonblocking", "--gil", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(path: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, the `top` leaf functions, packages by leaf samples)."""
    functions: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        found = FRAME.match(leaf)
        name, file = (found["name"], found["file"]) if found else (leaf, "")
        short = "/".join(file.split("/")[-2:])
        functions[f"`{name}` ({short})"] += int(count)
        package = next((label for part, label in PACKAGES if part in file), "other")
        packages[package] += int(count)
    total = sum(functions.values())
    return total, functions.most_common(top), packages.most_common()


def profile(name: str, folder: Path, seconds: int) -> list[tuple[str, Path]]:
    server = peer_servers.prepare(name, folder)
    script = folder / "post.lua"
    script.write_text(LUA)
    running = Started(server, folder)
    try:
        _, _, body = running.first_response(server.start_timeout)
        assert body == EXPECTED, body
        start_wrk(running.url, 32, 2, str(script)).communicate()  # warm
        load = start_wrk(running.url, 32, seconds + 4, str(script))
        targets = [("supervisor" if name == "skylift" else "server", running.proc.pid)]
        if name == "skylift":
            targets.append(("busiest instance", busiest_child(running.proc.pid)))
        recorders = []
        for role, pid in targets:
            out = folder / f"{name}-{role.replace(' ', '-')}.txt"
            recorders.append((f"{name} {role}", out, record(pid, seconds, out)))
        found = []
        for label, out, spy in recorders:
            if spy.wait(seconds + 90) != 0:
                raise RuntimeError(f"py-spy could not record {label} (exit {spy.returncode})")
            found.append((label, out))
        load.communicate()
        return found
    finally:
        running.stop()


def report(profiles: list[tuple[str, Path]], args: argparse.Namespace, started: str) -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    parts = [
        "## Where a request's CPU goes: py-spy profiles of both sides\n",
        f"Measured {started} UTC on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load} at the end. Command: `make bench` "
        f"(`python bench/profile_http.py --seconds {args.seconds}`): POST /change under wrk "
        f"-t1 -c32; py-spy record --nonblocking --gil at 500 samples a second for "
        f"{args.seconds} s of each process. Only samples holding the GIL count; a sample's "
        "leaf is the Python function running (C it calls with the GIL held included); "
        "kernel time with the GIL released is not seen.\n",
    ]
    for label, path in profiles:
        total, functions, packages = summary(path, args.top)
        parts.append(f"### {label} ({total:,} samples)\n")
        parts.append("| function (leaf) | share |\n|---|---:|")
        parts += [f"| {f} | {n / total:.1%} |" for f, n in functions]
        parts.append("\nBy package: " + ", ".join(f"{p} {n / total:.0%}" for p, n in packages))
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=12, help="functions listed per process")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        profiles = profile("skylift", folder, args.seconds)
        profiles += profile("fastapi", folder, args.seconds)
        text = report(profiles, args, started)
    print(text)
    if args.out is not None:
        write_section(args.out, "profile", text)


if __name__ == "__main__":
    main()
