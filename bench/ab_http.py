"""Two skylift source trees on POST /change, interleaved: before and after a change.

    python bench/ab_http.py BEFORE_SRC AFTER_SRC [--rounds 6] [--seconds 6]

e.g. `git archive main src | tar -x -C /tmp/before` and `src` of the worktree. Each
round starts a fresh `skylift up` of each tree in turn (`PYTHONPATH` picks the tree; the
order flips every round), warms it 2 s, then runs wrk -t1 -c32. Per run: requests/s,
p99, the CPU per request of the server's process tree and of the supervisor (the
`skylift up` process alone, which the front's work runs in), and the load average. On
a shared machine requests/s swing with the neighbours' load; the CPU per request much
less, so it is the number to compare.

Only the supervisor's code comes from the tree: the zygote and its instances start with
a clean environment (no PYTHONPATH) and import skylift from the virtualenv's install.
To compare worker code, use bench/worker_cpu_bench.py, which runs each checkout on its
own virtualenv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import peer_servers
import proctree
from bench_common import EXPECTED, LUA, parse_wrk, start_wrk
from http_bench import Started

KEYS = ("rps", "p99", "cpu", "supervisor")


def own_cpu(pid: int) -> float:
    """User + system seconds of `pid` alone (not its children)."""
    fields = proctree.stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / proctree.TICKS


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def one(src: str, folder: Path, script: str, seconds: int) -> dict[str, float]:
    os.environ["PYTHONPATH"] = src  # the server's command inherits the environment
    running = Started(peer_servers.prepare("skylift", folder), folder)
    try:
        _, _, body = running.first_response(60)
        if body != EXPECTED:
            raise SystemExit(f"{src}: answered {body!r}")
        time.sleep(0.5)
        start_wrk(running.url, 32, 2, script).communicate()
        pid = running.proc.pid
        tree, own = proctree.cpu_seconds(pid), own_cpu(pid)
        out = start_wrk(running.url, 32, seconds, script).communicate()[0]
        requests, rps, _, p99, errors = parse_wrk(out)
        if errors:
            raise SystemExit(f"{src}: {errors} errors")
        per = 1e6 / max(requests, 1)
        return {
            "rps": rps,
            "p99": p99,
            "cpu": (proctree.cpu_seconds(pid) - tree) * per,
            "supervisor": (own_cpu(pid) - own) * per,
        }
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    print(f"load average at the start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = folder / "post.lua"
        script.write_text(LUA)
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                run = one(trees[name], folder, str(script), args.seconds)
                runs[name].append(run)
                shown = ", ".join(f"{k} {v:,.1f}" for k, v in run.items())
                print(f"round {round_ + 1} {name}: {shown} (load {load()})", flush=True)
    for name, done in runs.items():
        parts = []
        for key in KEYS:
            values = [r[key] for r in done]
            low, high = min(values), max(values)
            parts.append(f"{key} {statistics.median(values):,.1f} [{low:,.1f}-{high:,.1f}]")
        print(f"{name}: median [range] " + ", ".join(parts))
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
