"""The `skylift` command line: one module per command group, imported when it runs."""

from __future__ import annotations

import importlib

import click

# Command name -> "module:attribute": a command's module is imported only when it runs
# (or `--help` lists it), so `skylift invoke` loads no other command's dependencies.
LAZY = {
    "invoke": "skylift.cli.invoke:invoke",
    "schedules": "skylift.cli.schedules:schedules",
    "up": "skylift.cli.up:up",
    "status": "skylift.cli.scaling:status",
    "scale": "skylift.cli.scaling:scale",
    "send": "skylift.cli.resources:send",
    "queues": "skylift.cli.resources:queues",
    "redrive": "skylift.cli.resources:redrive",
    "reset-db": "skylift.cli.resources:reset_db",
    "put": "skylift.cli.resources:put",
    "get": "skylift.cli.resources:get",
    "export": "skylift.cli.export:export",
    "logs": "skylift.cli.logs:logs",
    "backup": "skylift.cli.backup:backup",
    "restore": "skylift.cli.backup:restore",
    "alerts": "skylift.cli.alerts:alerts",
    "load": "skylift.cli.load:load",
    "events": "skylift.cli.events:events",
    "init": "skylift.cli.init:init",
    "build": "skylift.cli.build:build",
    "describe": "skylift.cli.describe:describe",
    "replay": "skylift.cli.describe:replay",
}


class LazyGroup(click.Group):
    """A group whose commands in `LAZY` are imported when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = LAZY.get(cmd_name)
        if found is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = found.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's, but a command with a summary (cli/summaries.py) is listed from it:
        # `skylift --help` imports no command module.
        from skylift.cli.summaries import SUMMARIES

        listed = []
        for name in self.list_commands(ctx):
            summary = SUMMARIES.get(name) if name in LAZY else None
            command = click.Command(name, help=summary) if summary else self.get_command(ctx, name)
            if command is not None and not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in listed])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skylift")
def main() -> None:
    """skylift: run AWS Lambda functions locally, with every trigger."""
