"""The PNG chart of a run: rps and latency percentiles against users, the knee marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from skylift.load.steps import Step, knee


def draw(steps: Sequence[Step], path: Path, title: str) -> None:
    """Write the chart of `steps` to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here, and none needed
    import matplotlib.pyplot as plt

    users = [s.users for s in steps]
    figure, rps_axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    rps_axis.plot(users, [s.rps for s in steps], "o-", color="tab:blue", label="requests/s")
    rps_axis.set_xlabel("users")
    rps_axis.set_ylabel("requests/s", color="tab:blue")
    latency_axis = rps_axis.twinx()
    for name, style in (("p50", ":"), ("p95", "--"), ("p99", "-.")):
        values = [getattr(s, name) for s in steps]
        latency_axis.plot(users, values, style, color="tab:red", label=f"{name} ms")
    latency_axis.set_ylabel("latency (ms)", color="tab:red")
    found = knee(steps)
    if found is not None:
        rps_axis.axvline(found.users, color="gray", alpha=0.5)
        rps_axis.annotate(
            f"knee: {found.users} users, {found.rps:.0f} rps",
            (found.users, found.rps),
            textcoords="offset points",
            xytext=(6, -14),
        )
    lines = rps_axis.get_legend_handles_labels()
    more = latency_axis.get_legend_handles_labels()
    rps_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    rps_axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
