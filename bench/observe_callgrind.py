"""Observing's cost in instructions and simulated cache misses per request: the supervisor
of `skylift up` and of `skylift up --no-observe` under valgrind's callgrind, POST /change.

    python bench/observe_callgrind.py [--seconds 60] [--ll 1048576,16,64]
    python bench/observe_callgrind.py --b-env PYTHONPATH=<a worktree's src> --b-on
        # a change, against the code as it is (both "on")

The paired wall-clock bench (`observe_cost_bench.py`) gives its verdict within about ±3%
after 20 pairs of servers on a shared 2-core machine, whose slices vary by ±15% and
more. Counted by callgrind, one pair of runs tells a server's work per request within
about 2% (about 5,000 instructions of some 280,000): enough for what observing adds as a
whole (about 20,000) or the stored logs' part of it (about 10,000), not for a change of
1,000 (the spread likely comes from the rate, which sets the batches' sizes, and from
how many batches, writes and alert samples fall in the window). What it does not see:
other processes' use of the caches (the workers, wrk), the kernel's work (system calls,
page faults, the GIL's handoffs), and time. Its cache is simulated: L1 as the host's,
and a last level of `--ll` (size,associativity,line) standing for what of the host's
shared L3 the supervisor might keep under load (1 MiB by default; not measured).

Each server (a copy of make-change with a fixed pool, `--instances`) starts under
callgrind; observing's timers are stretched by `DILATE` (`observe_callgrind/`) so that its
batches hold about as many results as at full speed (the autoscaler's tick is not: it
runs in both servers); after a 10 s warm-up with wrk the counts are zeroed
(`callgrind_control -z`), wrk runs `--seconds`, the counts are dumped; the two servers
run at once. Per request: instructions (Ir), L1 misses (instructions and data) and
last-level misses, and the C functions whose own instructions differ most (Python's own
functions are all in its evaluation loop; a function's recursion levels are added up).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from bench_common import LUA, free_port, parse_wrk, start_wrk
from observe_cost_bench import OFF, fixed_app
from report import write_section

HERE = Path(__file__).resolve().parent
DILATE = 88  # about how much slower the supervisor runs under callgrind with a cache
WARM = 10  # seconds of wrk before the counts are zeroed
STRETCHED = "skylift bench: observing's timers stretched"  # what the sitecustomize says


# What one server's run gave: requests, the dump's totals, each function's own instructions.
Counted = tuple[int, dict[str, int], collections.Counter[str]]


def run(
    label: str,
    options: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
    found: dict[str, Counted],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        app = fixed_app(directory, args.instances)
        policy = app / "skylift.toml"
        policy.write_text(policy.read_text().replace('interval = "1s"', f'interval = "{DILATE}s"'))
        out = directory / "callgrind.out"
        errors = directory / "stderr"
        paths = [
            env.get("PYTHONPATH"),
            os.environ.get("PYTHONPATH"),
            str(HERE / "observe_callgrind"),
        ]
        environment = {
            **os.environ,
            **env,
            "PYTHONHASHSEED": "1",
            "SKYLIFT_BENCH_DILATE": str(DILATE),
            "PYTHONPATH": ":".join(p for p in paths if p),
        }
        port = free_port()
        command = ["valgrind", "--tool=callgrind", "--cache-sim=yes", f"--LL={args.ll}"]
        command += [f"--callgrind-out-file={out}.%p", sys.executable, "-m", "skylift.cli"]
        command += ["up", str(app), "--port", str(port), "--quiet", *options]
        with errors.open("w") as stderr:
            proc = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=environment,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        script = directory / "post.lua"
        script.write_text(LUA)

        def said() -> str:
            return errors.read_text(errors="replace")[-3000:]

        def wrk(seconds: int) -> int:
            running = start_wrk(f"{url}/change", args.instances, seconds, str(script))
            out = running.communicate()[0]
            if running.returncode != 0:
                raise RuntimeError(f"{label}: wrk failed:\n{out}")
            requests, _, _, _, errors = parse_wrk(out)
            if errors:
                raise RuntimeError(f"{label}: {errors} requests failed:\n{out}")
            return requests

        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    httpx.get(f"{url}/--ready--", timeout=30)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(
                            f"{label}: skylift up did not start under callgrind:\n{said()}"
                        ) from None
                    time.sleep(0.5)
            if STRETCHED not in errors.read_text(errors="replace"):  # failed, or not loaded
                raise RuntimeError(
                    f"{label}: observe_callgrind/sitecustomize.py did not run:\n{said()}"
                )
            wrk(WARM)
            callgrind_control("-z", proc.pid, label)
            requests = wrk(args.seconds)
            callgrind_control("-d", proc.pid, label)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        dumps = sorted(glob.glob(f"{out}.{proc.pid}.*"))  # the dump asked for: ".1"
        if not dumps:
            raise RuntimeError(f"{label}: callgrind wrote no dump:\n{said()}")
        dump = Path(dumps[0])
        found[label] = (requests, totals(dump), own_instructions(dump))


def callgrind_control(option: str, pid: int, label: str) -> None:
    done = subprocess.run(["callgrind_control", option, str(pid)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{label}: callgrind_control {option} failed:\n{done.stdout}{done.stderr}"
        )


def plain(function: str) -> str:
    """A function's name without callgrind's recursion mark (`'2`)."""
    return function.split("'")[0]


def totals(path: Path) -> dict[str, int]:
    """The dump's `summary:` line: the counters over the window since they were zeroed.
    (Its `totals:` line, the sum of its cost lines, is higher by a nearly fixed amount,
    about 20 million instructions here whatever the window's length: not the window's.)"""
    events: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(events, map(int, line.split()[1:]), strict=True))
    raise RuntimeError(f"no summary in {path}")


def own_instructions(path: Path) -> collections.Counter[str]:
    """Each function's own instructions (not its callees'), from the dump's cost lines
    (which add up to its `totals:`, a little more than the window's: see `totals`; for
    ranking the functions, not for the table)."""
    names: dict[str, str] = {}
    own: collections.Counter[str] = collections.Counter()
    function = ""
    after_call = False
    for line in path.read_text().splitlines():
        if line.startswith(("fn=", "cfn=")):
            match = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if match is not None:
                if match.group(2):
                    names[match.group(1)] = match.group(2)
                if line.startswith("fn="):  # recursion levels (`'2`) counted as one
                    function = plain(names.get(match.group(1), match.group(1)))
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the call's, inclusive
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
            else:
                parts = line.split()
                if len(parts) > 1 and parts[1].isdigit():
                    own[function] += int(parts[1])
    return own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--ll", default="1048576,16,64", help="last level: size,assoc,line")
    parser.add_argument(
        "--b-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=lambda text: tuple(text.split("=", 1)),
    )
    parser.add_argument("--b-on", action="store_true", help='the second server "on" too')
    parser.add_argument("--out", type=Path, help="the benchmarks page to write the section to")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install -y valgrind wrk")
    found: dict[str, Counted] = {}
    second = [] if args.b_on else OFF
    threads = [
        threading.Thread(target=run, args=("a", [], {}, args, found)),
        threading.Thread(target=run, args=("b", second, dict(args.b_env), args, found)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(found) != 2:
        sys.exit("a server failed (above)")
    text = report(args, found)
    print(text)
    if args.out and not (args.b_on or args.b_env):  # a variant is a check, printed
        write_section(args.out, "observe-callgrind", text)


def report(args: argparse.Namespace, found: dict[str, Counted]) -> str:
    (na, ta, oa), (nb, tb, ob) = found["a"], found["b"]
    label_b = "`skylift up`" if args.b_on else "`--no-observe`"
    label_b += "".join(f" with {k}={v}" for k, v in args.b_env)
    groups = {
        "instructions": ("Ir",),
        "L1 misses (instructions and data)": ("I1mr", "D1mr", "D1mw"),
        f"last-level misses (a {args.ll.split(',')[0]}-byte cache)": ("ILmr", "DLmr", "DLmw"),
    }
    rows = []
    for name, keys in groups.items():
        a = sum(ta[k] for k in keys) / na
        b = sum(tb[k] for k in keys) / nb
        rows.append(f"| {name} | {a:,.0f} | {b:,.0f} | {a / b:.3f} | {a - b:+,.0f} |")
    differences = {f: oa[f] / na - ob[f] / nb for f in set(oa) | set(ob)}
    largest = sorted(differences.items(), key=lambda kv: -abs(kv[1]))[:12]
    return "\n".join(
        [
            "## Observability in instructions: callgrind's counts per request",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
            f"{platform.python_version()}. Command: `python bench/observe_callgrind.py "
            f"--seconds {args.seconds}`: the supervisor of `skylift up` (stored logs and "
            f"history, `/metrics`, an `[alerts]` policy) and of {label_b}, each under "
            f"valgrind's callgrind with its cache simulated, on a copy of "
            f"examples/make-change with a fixed pool of {args.instances} instances; "
            f"observing's timers stretched {DILATE} times as the server is slowed, so that "
            f"its batches hold about as many results as at full speed; after {WARM} s of wrk the "
            f"counts are zeroed, then wrk -t1 -c{args.instances} runs {args.seconds} s "
            f"({na:,} and {nb:,} requests). Counts, not time: one pair of runs tells a "
            "server's work per request within about 2% (batch sizes vary with the rate); "
            "what they leave out is the other processes' use of the caches, the kernel's "
            "work and the GIL's handoffs.",
            "",
            f"| per request | `skylift up` | {label_b} | ratio | added |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "The C functions whose own instructions differ most per request (Python's own "
            "functions are all in its evaluation loop, `_PyEval_EvalFrameDefault`): "
            + ", ".join(f"`{name[:60]}` {value:+,.0f}" for name, value in largest)
            + ".",
        ]
    )


if __name__ == "__main__":
    main()
