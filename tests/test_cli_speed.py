"""What keeps `skylift --help` and `skylift invoke` fast, checked by what they import
(never by timing; bench/cli_bench.py measures the time)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from skylift.cli import LAZY, main
from skylift.cli.summaries import SUMMARIES


def imported_by(*args: str) -> set[str]:
    """The modules `skylift ARGS` has imported when it exits."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('MODULES ' + ' '.join(sys.modules)))\n"
        "from skylift.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    line = done.stderr.rpartition("MODULES ")[2]
    return set(line.split())


def test_help_lists_every_command_without_importing_any():
    modules = imported_by("--help")
    assert modules, "the script printed no module list"
    commands = {spec.split(":")[0] for spec in LAZY.values()}
    assert not commands & modules


@pytest.mark.parametrize("name", sorted(LAZY))
def test_each_command_has_a_summary_saying_what_its_help_says(name):
    assert name in SUMMARIES, (
        f"add {name!r} to SUMMARIES in src/skylift/cli/summaries.py: the first paragraph "
        "of its help, so `skylift --help` lists it without importing it"
    )
    command = main.get_command(click.Context(main), name)
    assert command is not None
    listed = click.Command(name, help=SUMMARIES[name])
    for limit in (30, 45, 60, 80, 120, 400):
        assert listed.get_short_help_str(limit) == command.get_short_help_str(limit)
