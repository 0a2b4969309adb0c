"""`skylift schedules`: an app's schedules and their next fire times."""

from __future__ import annotations

import click

from skylift.cli.common import _target, fail, parameter_overrides_option
from skylift.errors import SkyliftError


@click.command()
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option("--count", "-n", default=3, show_default=True, help="Fire times to show for each.")
@parameter_overrides_option
def schedules(
    app: str | None, template: str | None, count: int, parameter_overrides: tuple[str, ...]
) -> None:
    """List APP's schedules and their next fire times (UTC).

    Rates count from when `skylift up` starts; here, as if it started now.
    """
    from skylift.aio import run

    target = _target(app, template, parameter_overrides)

    async def show() -> None:
        from skylift.engine.platform import Platform
        from skylift.sources.scheduler import Scheduler, entries

        async with await Platform.start(target) as platform:
            found = entries(list(platform.specs.values()), platform.region)
            scheduler = Scheduler(found, platform.invoker.invoke, platform.region)
            if not found:
                click.echo("no schedules")
            for entry in found:
                times: list[str] = []
                when = None
                while entry.trigger.enabled and len(times) < count:
                    when = scheduler.next_fire(entry, after=when)
                    if when is None:
                        break
                    times.append(f"{when:%Y-%m-%d %H:%M}Z")
                state = "enabled" if entry.trigger.enabled else "disabled"
                click.echo(
                    f"{entry.function}\t{entry.trigger.expression}\t{state}\t"
                    + (", ".join(times) or "never")
                )

    try:
        run(show)
    except SkyliftError as exc:
        fail(str(exc))
