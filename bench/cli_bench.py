"""The command line's own speed: `skylift --help` and `skylift invoke` of a small function,
wall time from the shell (interpreter start to exit), as a user waits for them.

    python bench/cli_bench.py --out docs/benchmarks.md
    python bench/cli_bench.py --compare /path/to/other/.venv/bin/skylift  # interleaved
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import write_section

ROUNDS = 15
ROOT = Path(__file__).resolve().parents[1]
SKYLIFT = str(Path(sys.executable).parent / "skylift")


def wall(args: list[str], cwd: Path) -> tuple[float, float]:
    """Milliseconds of wall time, and of CPU time of the command and all it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, timeout=60)
    elapsed = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr.decode()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--compare",
        metavar="SKYLIFT",
        help="another installation's skylift (e.g. main's), run interleaved with this one",
    )
    args = parser.parse_args()
    commands = {
        # The interpreter's own start, interleaved: on a shared machine the ratios to it
        # say more than the milliseconds.
        "`python -c pass`": [sys.executable, "-c", "pass"],
        "`skylift --help`": [SKYLIFT, "--help"],
        "`skylift invoke change examples/make-change -e event.json`": [
            SKYLIFT,
            "invoke",
            "change",
            str(ROOT / "examples" / "make-change"),
            "-e",
            "event.json",
        ],
    }
    targets = {name: None for name in commands} | {list(commands)[2]: 150}
    if args.compare:
        for name, argv in list(commands.items())[1:]:
            commands[f"{name} ({args.compare})"] = [args.compare, *argv[1:]]
            targets[f"{name} ({args.compare})"] = None
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "event.json").write_text('{"body": "{\\"amount\\": \\"0.41\\"}"}')
        for argv in commands.values():
            wall(argv, folder)  # warm the page cache
        for _ in range(ROUNDS):  # interleaved: a busy moment touches both alike
            for name, argv in commands.items():
                elapsed, cpu = wall(argv, folder)
                times[name].append(elapsed)
                cpus[name].append(cpu)
    load_after = os.getloadavg()[0]
    base = statistics.median(times["`python -c pass`"])
    compared = f" --compare {args.compare}" if args.compare else ""
    rows = [
        f"| {name} | {statistics.median(t):.0f} ms | {min(t):.0f} ms | {max(t):.0f} ms "
        f"| {statistics.median(t) / base:.1f}x | {statistics.median(cpus[name]):.0f} ms "
        f"| {f'≤ {targets[name]} ms' if targets[name] else '—'} |"
        for name, t in times.items()
    ]
    text = "\n".join(
        [
            "## The command line: wall time of `--help` and of a small `invoke`",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores (load average {load:.1f} at the start, {load_after:.1f} at the end). "
            f"Command: `make bench` (`python bench/cli_bench.py{compared}`): {ROUNDS} "
            "interleaved runs "
            "of each, interpreter start to exit. The invoke loads the app (its zygote's "
            "interpreter starts while the command imports the engine), runs its init phase, "
            "forks an instance, invokes it once and stops everything. The ratio is to the "
            "median of `python -c pass` in the same run; CPU is the median CPU time (user "
            "and system) of the command and every process it started, which a busy machine "
            "changes less than the wall time.",
            "",
            "| command | median | min | max | ratio to `python -c pass` | CPU | target |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "cli", text)


if __name__ == "__main__":
    main()
