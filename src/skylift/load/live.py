"""The live view of a run: a table of finished steps and a progress bar (rich)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from skylift.load import locust_run
from skylift.load.steps import Step


def table(steps: list[Step]) -> Table:
    out = Table(title="skylift load")
    for name in ("users", "rps", "p50 ms", "p95 ms", "p99 ms", "errors"):
        out.add_column(name, justify="right")
    for s in steps:
        out.add_row(
            str(s.users),
            f"{s.rps:.1f}",
            f"{s.p50:.1f}",
            f"{s.p95:.1f}",
            f"{s.p99:.1f}",
            f"{s.error_ratio:.1%}",
        )
    return out


def show(
    events: Iterable[locust_run.Progress | Step], console: Console | None = None
) -> list[Step]:
    """Consume a run's events, showing them as they come; the finished steps."""
    steps: list[Step] = []
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=True
    )
    task = bar.add_task("starting", total=1.0)
    # auto_refresh off: under gevent a refresh thread would be a greenlet competing
    # with the users; the loop refreshes at each event instead.
    with Live(Group(table(steps), bar), console=console, auto_refresh=False) as live:
        for event in events:
            if isinstance(event, Step):
                steps.append(event)
            else:
                bar.update(task, completed=event.done, description=f"{event.users} users")
            live.update(Group(table(steps), bar), refresh=True)
        live.update(table(steps), refresh=True)
    (console or live.console).line()  # a file gets no newline after the last frame
    return steps
