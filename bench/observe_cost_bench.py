"""What observing costs: POST /change with stored logs, metrics, alerting and history on,
against `skylift up --no-observe`, with wrk, in many short paired slices.

    python bench/observe_cost_bench.py --out docs/benchmarks.md
    python bench/observe_cost_bench.py --control    # "on" against "on": the method's noise

A fresh server's requests/s varies more between starts (mostly with the number of
instances the autoscaler settles on) than the 5% this bench must resolve, so:

- the function has a fixed pool: a copy of examples/make-change whose route declares
  `min_instances` = `max_concurrency` = the wrk connections, so both modes serve with the
  same instances from the first request to the last;
- a pair of servers, one per mode (the very `skylift up` and `skylift up --no-observe`),
  are alive at once, and measured in alternating short slices (ABBA: which goes first
  alternates), the idle one stopped (SIGSTOP of its supervisor, SIGCONT for its slice)
  so that nothing it does falls on the other's slice; a noisy spell on the shared
  machine falls on both slices of a pair alike;
- many such pairs of servers, one after another, so that no one server's luck
  decides: a fresh server's speed moves by several percent with where address-space
  randomisation put its memory, and every slice of a pair shares its two servers' luck.
  Each pair gives a ratio (the means of its slices), and the result is their median
  with a distribution-free 95% confidence interval over the pairs (an interval over
  slices took that shared luck for precision); which mode starts and warms up first
  alternates with the pair;
- besides requests/s, the supervisor's CPU time per request (/proc), which other work on
  the machine moves far less; and, since the 2-core machine is saturated as a whole (wrk,
  the supervisor, its workers), the CPU time per request of every part: the workers,
  wrk, the kernel's threads (kworker and jbd2 writing dirty pages back, which no
  process of skylift's is charged for), and the whole machine's busy time (/proc/stat).

Both servers run with an `[alerts]` policy sampling every second (a busier detector than
the 15 s default); "off" ignores it. `--control` runs two "on" servers instead: the
ratios it finds show what the method calls a difference when there is none. Variants of
the second server, to find where a cost is (printed, not written to --out):

    python bench/observe_cost_bench.py --control --b-env SKYLIFT_LOGS=off  # logs' share
    python bench/observe_cost_bench.py --control --b-dir /dev/shm  # state on tmpfs
    python bench/observe_cost_bench.py --control --no-aslr  # without layout luck
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_common import EXAMPLE, LUA, free_port, parse_wrk, start_wrk, stop
from proctree import TICKS, process_cpu, stat_fields, tree
from report import write_section

PAIRS = 20  # pairs of servers, one after another
SLICES = 4  # slice pairs per pair of servers
SECONDS = 1  # per slice
CONNECTIONS = 32  # wrk's, and the function's fixed instances
POLICY = """\
[alerts]
interval = "1s"
window = "5m"
min_samples = 20

[alerts.primary]
name = "on-call"
"""
ROUTE = '@app.http("/change", methods=["POST"])'
OFF = ["--no-observe"]


@dataclass
class Slice:
    pair: int  # which pair of servers
    rps: float
    p99: float
    errors: int
    cpu: float  # the supervisor's CPU µs per request
    loop: float  # ... its main thread's (the event loop's)
    tree: float  # with its workers'
    machine: float  # every CPU's busy time (/proc/stat: all processes and the kernel)
    kernel: float  # ... of it, kernel threads' (writeback: kworker, jbd2; pid 2's children)
    wrk: float  # ... wrk's (the load)
    idle: float  # the share of the CPUs' time idle (0: the machine was saturated)
    faults: float  # the supervisor's page faults (minor) per 1,000 requests


def fixed_app(directory: Path, instances: int) -> Path:
    """A copy of make-change whose function has exactly `instances` instances (each
    server gets its own: its state folder, .skylift, is the app's)."""
    app = directory / "make-change"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".skylift", "__pycache__"))
    source = (app / "app.py").read_text()
    if ROUTE not in source:
        raise RuntimeError(f"examples/make-change/app.py no longer declares {ROUTE}")
    fixed = f'@app.http("/change", methods=["POST"], min_instances={instances}, '
    fixed += f"max_concurrency={instances})"
    (app / "app.py").write_text(source.replace(ROUTE, fixed))
    (app / "skylift.toml").write_text(POLICY)
    return app


class Server:
    def __init__(
        self,
        app: Path,
        options: list[str],
        seed: int,
        env: dict[str, str] | None = None,
        aslr: bool = True,
    ) -> None:
        self.options = options
        self.port = free_port()
        # --quiet in both modes: the terminal's log is no part of what is compared (and
        # without stored logs it shows every invocation, with them a bounded number).
        cmd = [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", str(self.port)]
        cmd.append("--quiet")
        if not aslr:  # the same memory layout every start (investigations only)
            cmd = ["setarch", platform.machine(), "--addr-no-randomize", *cmd]
        # The pair's servers hash alike (dict and set layouts); the pairs differ.
        environment = {**os.environ, "PYTHONHASHSEED": str(seed), **(env or {})}
        self.proc = subprocess.Popen(
            [*cmd, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment
        )
        self.url = f"http://127.0.0.1:{self.port}/change"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/--ready--", timeout=10)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            stop(self.proc)
            raise RuntimeError(f"skylift up {' '.join(options)} did not start")

    def check(self) -> None:
        """`/metrics` answers with observing on, and 404 with it off."""
        code = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).status_code
        if code != (404 if OFF[0] in self.options else 200):
            raise RuntimeError(f"skylift up {' '.join(self.options)}: /metrics answered {code}")

    def pause(self) -> None:
        time.sleep(0.2)  # the closes of the last slice's connections are handled first
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        stop(self.proc)


def cpu_seconds(pid: int, thread: bool = False) -> float:
    """The process's own CPU time (not its workers'), in nanoseconds from each thread's
    schedstat (/proc's user and system times count 10 ms ticks, too coarse for a 1 s
    slice's supervisor); with `thread`, its main thread's alone."""
    tasks = [Path(f"/proc/{pid}/task/{pid}")] if thread else Path(f"/proc/{pid}/task").iterdir()
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except OSError:  # a thread that ended meanwhile
            continue
    return total / 1e9


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy and idle time of all CPUs since boot (/proc/stat; busy: user, nice, system,
    irq, softirq, every process's and the kernel's, its writeback too; idle: idle and
    iowait; steal is neither)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq = (int(f) for f in fields[:7])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, (idle + iowait) / tick


def kernel_threads_cpu_seconds() -> dict[int, float]:
    """CPU time of each of the kernel's threads (kthreadd, pid 2, and its children: the
    kworker and jbd2 threads that write dirty pages back, among others)."""
    found = {}
    for entry in os.listdir("/proc"):
        fields = stat_fields(int(entry)) if entry.isdigit() else None
        if fields is not None and (entry == "2" or fields[1] == "2"):
            found[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def kernel_threads_used(before: dict[int, float]) -> float:
    """What the kernel's threads alive now used since `before` (kworkers come and go: one
    that ended meanwhile is missed, never counted negative; a new one's is all since)."""
    now = kernel_threads_cpu_seconds()
    return sum(now[pid] - before.get(pid, 0.0) for pid in now)


def page_faults(pid: int) -> int:
    """The process's minor page faults so far (its threads', not its workers')."""
    fields = stat_fields(pid)
    return 0 if fields is None else int(fields[7])


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and every live descendant (its workers)."""
    return sum(process_cpu(child) for child in tree(pid, session=False))


def measure(server: Server, seconds: int, script: str, pair: int = 0) -> Slice:
    pid = server.proc.pid
    server.resume()
    try:
        before, tree_before = cpu_seconds(pid), tree_cpu_seconds(pid)
        loop_before = cpu_seconds(pid, thread=True)
        (machine_before, idle_before), kernel_before = (
            machine_cpu_seconds(),
            kernel_threads_cpu_seconds(),
        )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's, once waited for
        faults_before = page_faults(pid)
        run = start_wrk(server.url, CONNECTIONS, seconds, script, threads=2)
        out = run.communicate()[0]
        if run.returncode != 0:
            code = server.proc.poll()
            alive = "running" if code is None else f"exited with {code}"
            command = " ".join(run.args)
            raise RuntimeError(f"{command} failed ({run.returncode}; the server {alive}):\n{out}")
        machine, idle = (
            now - then
            for now, then in zip(machine_cpu_seconds(), (machine_before, idle_before), strict=True)
        )
        kernel = kernel_threads_used(kernel_before)
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = waited.ru_utime + waited.ru_stime - children.ru_utime - children.ru_stime
        requests, rps, _, p99, errors = parse_wrk(out)
        cpu = (cpu_seconds(pid) - before) / max(requests, 1) * 1e6
        loop = (cpu_seconds(pid, thread=True) - loop_before) / max(requests, 1) * 1e6
        tree = (tree_cpu_seconds(pid) - tree_before) / max(requests, 1) * 1e6
        machine = machine / max(requests, 1) * 1e6
        kernel = kernel / max(requests, 1) * 1e6
        wrk = wrk / max(requests, 1) * 1e6
        faults = (page_faults(pid) - faults_before) / max(requests, 1) * 1000
        idle = idle / max(idle + machine * 1e-6 * max(requests, 1), 1e-9)
    finally:
        server.pause()
    return Slice(pair, rps, p99, errors, cpu, loop, tree, machine, kernel, wrk, idle, faults)


def median_interval(values: list[float]) -> tuple[float, float] | None:
    """A distribution-free 95% confidence interval for the median: the widest pair of
    order statistics, k-th from each end, that holds the median with probability at
    least 0.95 (the binomial(n, 1/2) count of values below it falls between them). None
    for fewer than 6 values, where even the range holds it with less."""
    ordered = sorted(values)
    n = len(ordered)
    found = None
    for k in range(n // 2):
        if sum(math.comb(n, i) for i in range(k + 1, n - k)) / 2**n < 0.95:
            break
        found = (ordered[k], ordered[n - 1 - k])
    return found


def shown(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "none: too few values for 95%"
    return f"{interval[0]:.3f} - {interval[1]:.3f}"


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def run_pairs(
    args: argparse.Namespace, apps: dict[str, Path], script: str
) -> dict[str, list[Slice]]:
    modes = {"on": [], "off": [] if args.control else OFF}
    found: dict[str, list[Slice]] = {mode: [] for mode in modes}
    for pair in range(args.pairs):
        servers: dict[str, Server] = {}
        # Which mode starts (and warms up) first alternates with the pair, so that
        # whatever going first does falls on both modes alike.
        started = list(modes) if pair % 2 == 0 else list(reversed(modes))
        try:
            for mode in started:
                env = dict(args.b_env) if mode == "off" else {}
                servers[mode] = Server(
                    apps[mode], modes[mode], seed=pair + 1, env=env, aslr=not args.no_aslr
                )
                servers[mode].check()
                servers[mode].pause()
            for mode in started:  # warm-up: instances, caches
                measure(servers[mode], 2, script)
            for index in range(args.slices):
                order = list(modes) if (index + pair) % 2 == 0 else list(reversed(modes))
                for mode in order:
                    found[mode].append(measure(servers[mode], args.seconds, script, pair))
                on, off = found["on"][-1], found["off"][-1]
                print(
                    f"pair {pair + 1} slice {index + 1}: on {on.rps:,.0f} rps {on.cpu:.1f} µs,"
                    f" off {off.rps:,.0f} rps {off.cpu:.1f} µs, ratio {on.rps / off.rps:.3f};"
                    f" workers {on.tree - on.cpu:.1f} / {off.tree - off.cpu:.1f} µs,"
                    f" wrk {on.wrk:.1f} / {off.wrk:.1f}, kthreads {on.kernel:.1f} /"
                    f" {off.kernel:.1f}, machine {on.machine:.0f} / {off.machine:.0f} µs"
                    f" (idle {on.idle:.0%} / {off.idle:.0%}), page faults per 1,000 requests"
                    f" {on.faults:.1f} / {off.faults:.1f}",
                    file=sys.stderr,
                )
        finally:
            for server in servers.values():
                server.close()
    return found


def per_pair(on: list[Slice], off: list[Slice]) -> list[tuple[float, float]]:
    """Per pair of servers: on / off of the mean requests/s and of the mean CPU per
    request over its slices."""
    found = []
    for pair in sorted({s.pair for s in on}):
        a = [s for s in on if s.pair == pair]
        b = [s for s in off if s.pair == pair]
        found.append(
            (
                statistics.fmean(s.rps for s in a) / statistics.fmean(s.rps for s in b),
                statistics.fmean(s.cpu for s in a) / statistics.fmean(s.cpu for s in b),
            )
        )
    return found


def verdict(interval: tuple[float, float] | None) -> str:
    """The 5% target against the confidence interval of the on / off ratio."""
    if interval is None:
        return "not resolved (fewer than 6 pairs of servers give no 95% interval)"
    low, high = interval
    if low >= 0.95:
        return "met"
    if high < 0.95:
        return "not met"
    return "not resolved (the interval spans 5% lost)"


def is_variant(args: argparse.Namespace) -> bool:
    """A control or a variant of a server: a check of the method or of a part, not the
    comparison the target is about."""
    return bool(args.control or args.b_env or args.a_dir or args.b_dir or args.no_aslr)


def command() -> str:
    """How the run was made, as the report says it."""
    words = ["python", "bench/observe_cost_bench.py"]
    skip = False
    for word in sys.argv[1:]:
        if skip or word == "--out":  # where the report goes is no part of the run
            skip = not skip
            continue
        if not word.startswith("--out="):
            words.append(word)
    run = f"`{' '.join(words)}`"
    return run if len(words) > 2 else f"`make bench` ({run})"


def report(args: argparse.Namespace, found: dict[str, list[Slice]], load: str) -> str:
    on, off = found["on"], found["off"]
    ratios = [a.rps / b.rps for a, b in zip(on, off, strict=True)]
    cpu_ratios = [a.cpu / b.cpu for a, b in zip(on, off, strict=True)]
    ratio = statistics.median(ratios)
    slice_interval = median_interval(ratios)
    q1, q3 = quartiles(ratios)
    cpu_ratio = statistics.median(cpu_ratios)
    cpu_interval = median_interval(cpu_ratios)
    added = statistics.median(a.cpu - b.cpu for a, b in zip(on, off, strict=True))
    loop_ratios = [a.loop / b.loop for a, b in zip(on, off, strict=True)]
    loop_ratio = statistics.median(loop_ratios)
    loop_interval = median_interval(loop_ratios)
    loop_added = statistics.median(a.loop - b.loop for a, b in zip(on, off, strict=True))
    loop_on = statistics.median(a.loop for a in on)
    pairs = per_pair(on, off)
    pair_ratios = [r for r, _ in pairs]
    pair_ratio = statistics.median(pair_ratios)
    pair_interval = median_interval(pair_ratios)
    pair_cpu = statistics.median(c for _, c in pairs)
    pair_cpu_interval = median_interval([c for _, c in pairs])
    target = "none (a control or variant)" if is_variant(args) else verdict(pair_interval)
    label_off = "a second `skylift up` (control)" if args.control else "`--no-observe`"
    if args.b_env:
        label_off += " with " + " ".join(f"{k}={v}" for k, v in args.b_env)
    machine_ratios = [a.machine / b.machine for a, b in zip(on, off, strict=True)]
    machine_interval = median_interval(machine_ratios)
    machine_added = statistics.median(a.machine - b.machine for a, b in zip(on, off, strict=True))
    requests = sum(s.rps for s in on + off) * args.seconds
    parts: list[tuple[str, Callable[[Slice], float]]] = [
        ("(with its writer thread)", lambda s: s.cpu),
        ("its workers", lambda s: s.tree - s.cpu),
        ("wrk", lambda s: s.wrk),
        ("kernel threads", lambda s: s.kernel),
        ("together", lambda s: s.tree + s.wrk + s.kernel),
    ]
    kernel_all = sum(s.kernel * s.rps for s in on + off) * args.seconds / max(requests, 1)

    def row(slices: list[Slice], label: str) -> str:
        rps = [s.rps for s in slices]
        return (
            f"| {label} | {statistics.median(rps):,.0f} | {min(rps):,.0f} - {max(rps):,.0f} | "
            f"{statistics.median(s.p99 for s in slices):.2f} ms | "
            f"{statistics.median(s.cpu for s in slices):.1f} µs | "
            f"{statistics.median(s.loop for s in slices):.1f} µs | "
            f"{statistics.median(s.tree for s in slices):.0f} µs | "
            f"{statistics.median(s.machine for s in slices):.0f} µs | "
            f"{statistics.median(s.kernel for s in slices):.1f} µs | "
            f"{sum(s.errors for s in slices)} |"
        )

    return "\n".join(
        [
            "## Observability: what logs, metrics and alerting cost",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
            f"{os.cpu_count()} cores, Python {platform.python_version()}; load average "
            f"{load} at the start and {os.getloadavg()[0]:.1f} at the end. Command: "
            f"{command()}: POST /change on a copy of "
            f"examples/make-change whose function has a fixed pool of {CONNECTIONS} "
            f"instances (`min_instances` = `max_concurrency` = {CONNECTIONS}); "
            f"{args.pairs} pairs of servers, one after another, each pair alive at once "
            "(with the same PYTHONHASHSEED; which starts first alternates): `skylift up` "
            "(stored logs and history, "
            f"`/metrics`, an `[alerts]` policy sampling every second) and {label_off}, "
            "both with `--quiet` (the terminal's log is not compared). "
            f"Per pair, a 2 s warm-up each, then {args.slices} slice pairs of "
            f"wrk -t2 -c{CONNECTIONS} -d{args.seconds}s taking turns (which goes first "
            "alternates; the idle server's supervisor is stopped with SIGSTOP). Each row "
            "is the median slice; server CPU is the `skylift up` process's CPU time (its "
            "threads' /proc schedstat, in ns) per request; its loop, that of its main thread "
            "(the event loop) alone; with its workers, the whole process tree's (user + "
            "system, /proc); machine, every CPU's busy "
            "time (/proc/stat: all processes, wrk's and other work on the machine too, and "
            "the kernel's), of which its kernel threads (kworker, jbd2: writing dirty pages "
            "back, which the server's own CPU time does not count).",
            "",
            "| skylift up | requests/s | range | p99 | server CPU / request | its loop "
            "| with workers | machine | its kernel threads | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            row(on, "logs, metrics, alerting, history on (default)"),
            row(off, label_off),
            "",
            f"- Requests/s, on / off per pair of servers (the means of its slices): "
            f"median **{pair_ratio:.3f}** ({(1 - pair_ratio) * 100:.1f}% lost; 95% "
            f"confidence interval of the median {shown(pair_interval)}; "
            f"{len(pairs)} pairs of servers). Target (at most 5% lost): "
            f"{target}. Server CPU per request, on / off per pair: "
            f"median {pair_cpu:.3f} (95% interval {shown(pair_cpu_interval)}). "
            "The interval is over pairs of servers, not slices: the slices of one pair "
            "share their two servers' luck (a fresh server's speed moves by several "
            "percent with where address-space randomisation put its memory), which "
            "intervals over slices took for precision.",
            f"- Requests/s, on / off per slice pair: median {ratio:.3f} (quartiles "
            f"{q1:.3f} - {q3:.3f}; {len(ratios)} slice pairs; interval of the median "
            f"over slices {shown(slice_interval)}).",
            f"- Server CPU per request, on / off per slice pair: median **{cpu_ratio:.3f}** "
            f"({added:+.1f} µs; 95% interval over slices {shown(cpu_interval)}); its event "
            f"loop's alone: median **{loop_ratio:.3f}** ({loop_added:+.1f} µs; 95% "
            f"interval over slices {shown(loop_interval)}). Where the loop alone limits the "
            f"requests/s (at {loop_on:.1f} µs a request it is one core busy at "
            f"{1e6 / loop_on:,.0f} requests/s), observing would cost about "
            f"{(1 - 1 / loop_ratio) * 100:.1f}% of them; the requests/s lost are fewer "
            "where the workers' core is busy too.",
            f"- Machine-wide CPU per request, on / off per slice pair: median "
            f"**{statistics.median(machine_ratios):.3f}** ({machine_added:+.1f} µs; 95% "
            f"interval over slices {shown(machine_interval)}; the CPUs idle "
            f"{statistics.median(s.idle for s in on + off):.0%} of the time, median slice: "
            "where the machine is saturated this is its time over the requests, and moves "
            "with other work on it). Added per request, by part (medians of the per-slice "
            "differences): the supervisor "
            + ", ".join(
                f"{name} {statistics.median(map(lambda a, b: part(a) - part(b), on, off)):+.1f} µs"
                for name, part in parts
            )
            + f". The kernel's threads used {kernel_all:.1f} µs per request over all slices "
            "of both modes (writeback runs seconds after the writes, so it falls on either "
            "mode's slices).",
            "- Per pair of servers (mean over its slices), requests/s and CPU per request "
            "on / off: " + ", ".join(f"{r:.3f} and {c:.3f}" for r, c in pairs) + ".",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pairs", type=int, default=PAIRS, help="pairs of servers")
    parser.add_argument("--slices", type=int, default=SLICES, help="slice pairs per pair")
    parser.add_argument("--seconds", type=int, default=SECONDS, help="per slice")
    parser.add_argument("--control", action="store_true", help='"on" against "on"')
    parser.add_argument(
        "--b-env",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="the second server's environment (with --control: a variant of 'on')",
    )
    parser.add_argument(
        "--no-aslr",
        action="store_true",
        help="start the servers without address-space randomisation (setarch -R)",
    )
    parser.add_argument("--a-dir", type=Path, help="where the first server's app and state are")
    parser.add_argument("--b-dir", type=Path, help="... the second's (default: a temporary one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if args.no_aslr and shutil.which("setarch") is None:
        sys.exit("--no-aslr needs setarch: apt-get install -y util-linux")
    load = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory() as directory:
        places = {"on": args.a_dir, "off": args.b_dir}
        apps = {
            mode: fixed_app(Path(tempfile.mkdtemp(dir=places[mode] or directory)), CONNECTIONS)
            for mode in ("on", "off")
        }
        script = str(Path(directory) / "post.lua")
        Path(script).write_text(LUA)
        try:
            found = run_pairs(args, apps, script)
        finally:
            for app in apps.values():
                shutil.rmtree(app.parent, ignore_errors=True)
    text = report(args, found, load)
    print(text)
    if args.out and not is_variant(args):  # a control or a variant is a check, printed
        write_section(args.out, "observe-cost", text)


if __name__ == "__main__":
    main()
