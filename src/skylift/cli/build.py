"""`skylift build`: install the requirements.txt of a SAM template's functions and layers."""

from __future__ import annotations

import click

from skylift.cli.common import _target, fail, parameter_overrides_option
from skylift.errors import SkyliftError
from skylift.loader import AppTarget


@click.command()
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@parameter_overrides_option
def build(app: str | None, template: str | None, parameter_overrides: tuple[str, ...]) -> None:
    """Install each function's and layer's requirements.txt, as `sam build` does.

    Into .skylift-build/deps/<hash>/ beside the template, reused while the requirements
    and the Python version are unchanged. `skylift up` and `skylift invoke` do this first.
    """
    from skylift.sam import build as builder
    from skylift.sam import load

    target = _target(app, template, parameter_overrides)
    if isinstance(target, AppTarget):
        fail(
            "skylift build installs a SAM template's requirements.txt files; this app is a "
            "skylift App: install its dependencies into your environment (pip install)"
        )

    def run(installs: list[builder.Install]) -> None:
        ran = builder.run(installs, echo=click.echo)
        for install in installs:
            state = "installed" if install in ran else "up to date"
            click.echo(f"{install.owner}: {state} in {install.folder}")
        if not installs:
            click.echo("nothing to build: no function or layer has a requirements.txt")

    try:
        load(target.path, dict(target.parameters), run)
    except SkyliftError as exc:
        fail(str(exc))


COMMANDS = [build]
