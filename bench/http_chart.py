"""The PNG chart of `bench/http_bench.py`: requests/s, p99, CPU per request and PSS per server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from http_bench import Peer

SHORT = {
    "skylift": "skylift",
    "fastapi": "FastAPI / uvicorn",
    "flask-gunicorn": "Flask / gunicorn (2)",
    "flask-dev": "Flask dev server",
    "chalice": "chalice local",
    "serverless": "serverless-offline",
    "sam": "sam local start-api",
    "asgi": "raw ASGI (ceiling)",
}


def draw(peers: list[Peer], path: Path) -> None:
    ran = [p for p in peers if p.runs]
    names = [SHORT.get(p.name, p.name) for p in ran]
    medians = [p.median() for p in ran]
    colors = ["#d9480f" if p.name == "skylift" else "#868e96" for p in ran]
    figure, axes = plt.subplots(1, 4, figsize=(15, 0.45 * len(ran) + 1.6), sharey=True)
    rps = [m.rps for m in medians]
    low = [m.rps - min(r.rps for r in p.runs) for m, p in zip(medians, ran, strict=True)]
    high = [max(r.rps for r in p.runs) - m.rps for m, p in zip(medians, ran, strict=True)]
    panels = [
        (axes[0], rps, "requests/s (median, range)", "{:,.0f}"),
        (axes[1], [m.p99_ms for m in medians], "p99 latency, ms (c=32)", "{:.1f}"),
        (axes[2], [m.cpu_us for m in medians], "server CPU per request, µs", "{:,.0f}"),
        (axes[3], [m.pss_load / 2**20 for m in medians], "PSS under load, MiB", "{:,.0f}"),
    ]
    for axis, values, title, fmt in panels:
        bars = axis.barh(names, values, color=colors, xerr=[low, high] if axis is axes[0] else None)
        axis.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.margins(x=0.25)
        axis.tick_params(labelsize=8)
        axis.spines[["top", "right"]].set_visible(False)
    axes[0].invert_yaxis()
    not_run = [SHORT.get(p.name, p.name) for p in peers if not p.runs]
    note = "POST /change, wrk -t1 -c32, same handler everywhere, one interleaved run"
    if not_run:
        note += "; not runnable here: " + ", ".join(not_run)
    figure.suptitle(note, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
