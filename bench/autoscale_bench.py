"""What the autoscaler buys: a ramp of traffic with it and without it (`--no-autoscale`).

Clients step up from 2 to 16 concurrent (2 more every 1.5 s) against a handler that
sleeps 100 ms, then hold 16. With on-demand starts alone, every step up starts its new
instances on the request path (a cold start); with the autoscaler, the target runs
ahead of the observed concurrency and the instances are warm before they are needed.

    python bench/autoscale_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from concurrency_bench import start, stop
from report import write_section

APP = """
import time
from skylift import App

app = App()


@app.http("/work", methods=["GET"])
def work(event, context):
    time.sleep(0.1)
    return {"ok": True}
"""
STEPS = list(range(2, 17, 2))  # concurrent clients per step
STEP_SECONDS = 1.5
HOLD_SECONDS = 3.0


async def ramp(url: str) -> list[float]:
    """Latencies (s) of every request of the ramp."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:

        async def loop(until: float) -> None:
            while time.monotonic() < until:
                sent = time.monotonic()
                response = await client.get(url + "/work")
                response.raise_for_status()
                latencies.append(time.monotonic() - sent)

        began = time.monotonic()
        end = began + len(STEPS) * STEP_SECONDS + HOLD_SECONDS
        tasks = []
        for i in range(len(STEPS)):
            await asyncio.sleep(max(0.0, began + i * STEP_SECONDS - time.monotonic()))
            new = STEPS[i] - (STEPS[i - 1] if i else 0)
            tasks += [asyncio.ensure_future(loop(end)) for _ in range(new)]
        await asyncio.gather(*tasks)
    return latencies


def run(app: Path, *options: str) -> dict[str, float]:
    server, url = start(app, *options)
    try:
        latencies = asyncio.run(ramp(url))
        entry = httpx.get(url + "/_skylift/status").json()["functions"]["work"]
    finally:
        stop(server)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "cold": entry["cold_starts"],
        "prewarmed": entry["prewarmed"],
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        (app / "app.py").write_text(textwrap.dedent(APP))
        results = {
            "autoscaler on (default)": run(app),
            "--no-autoscale": run(app, "--no-autoscale"),
        }
    rows = [
        f"| {name} | {r['requests']:,.0f} | {r['cold']:.0f} | {r['prewarmed']:.0f} | "
        f"{r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['max']:.1f} ms |"
        for name, r in results.items()
    ]
    text = "\n".join(
        [
            "## Autoscaling: a ramp with and without the autoscaler",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            "cores. Command: `make bench` (`python bench/autoscale_bench.py`): clients step "
            f"from {STEPS[0]} to {STEPS[-1]} concurrent ({STEP_SECONDS:g} s per step, then "
            f"{HOLD_SECONDS:g} s at {STEPS[-1]}) against a 100 ms handler. Cold starts are "
            "requests that waited for their instance to start; prewarmed instances were "
            "started by the autoscaler before any request needed them.",
            "",
            "| server | requests | cold starts | prewarmed | p50 | p99 | max |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "autoscale", text)


if __name__ == "__main__":
    main()
