"""The command line's own speed: `skylift --help` and `skylift invoke` of a small function,
wall time from the shell (interpreter start to exit), as a user waits for them.

    python bench/cli_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
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


def wall(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr.decode()}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
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
    times: dict[str, list[float]] = {name: [] for name in commands}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "event.json").write_text('{"body": "{\\"amount\\": \\"0.41\\"}"}')
        for argv in commands.values():
            wall(argv, folder)  # warm the page cache
        for _ in range(ROUNDS):  # interleaved: a busy moment touches both alike
            for name, argv in commands.items():
                times[name].append(wall(argv, folder))
    load_after = os.getloadavg()[0]
    base = statistics.median(times["`python -c pass`"])
    rows = [
        f"| {name} | {statistics.median(t):.0f} ms | {min(t):.0f} ms | {max(t):.0f} ms "
        f"| {statistics.median(t) / base:.1f}x "
        f"| {f'≤ {targets[name]} ms' if targets[name] else '—'} |"
        for name, t in times.items()
    ]
    text = "\n".join(
        [
            "## The command line: wall time of `--help` and of a small `invoke`",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores (load average {load:.1f} at the start, {load_after:.1f} at the end). "
            f"Command: `make bench` (`python bench/cli_bench.py`): {ROUNDS} interleaved runs "
            "of each, interpreter start to exit. The invoke loads the app (its zygote's "
            "interpreter starts while the command imports the engine), runs its init phase, "
            "forks an instance, invokes it once and stops everything. The ratio is to the "
            "median of `python -c pass` in the same run.",
            "",
            "| command | median | min | max | ratio to `python -c pass` | target |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "cli", text)


if __name__ == "__main__":
    main()
