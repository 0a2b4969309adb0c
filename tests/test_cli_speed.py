"""What keeps `skylift --help` and `skylift invoke` fast, checked by what they import
(never by timing; bench/cli_bench.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from skylift.cli import LAZY, main
from skylift.cli.summaries import SUMMARIES


def imported_by(*args: str) -> set[str]:
    """The modules `skylift ARGS` has imported when it exits."""
    script = (
        "import atexit, os, sys\n"
        "def report():\n"
        "    sys.__stderr__.write('MODULES ' + ' '.join(sys.modules))\n"
        "    sys.__stderr__.flush()\n"
        "atexit.register(report)\n"
        "_exit = os._exit\n"  # `skylift invoke` ends without the interpreter's teardown
        "os._exit = lambda code: (report(), _exit(code))\n"
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


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "make-change"


def test_invoke_of_a_function_that_calls_no_aws_api_imports_no_server(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"body": json.dumps({"amount": "0.41"})}))
    modules = imported_by("invoke", "change", str(EXAMPLE), "-e", str(event))
    assert "skylift.engine.oneshot" in modules  # it did run the function here
    # The refusal server starts only when a function calls AWS; sample events only
    # without -e; no server machinery (pools, autoscaler), no uvloop.
    unneeded = {"uvicorn", "skylift.api", "skylift.events.samples", "skylift.engine.pool"}
    assert not (unneeded | {"skylift.engine.autoscaler", "uvloop"}) & modules


def test_invoke_imports_the_app_from_its_folder_not_from_where_it_runs(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "helper.py").write_text("WHERE = 'the app folder'\n")
    (app / "app.py").write_text(
        "import sys\nfrom skylift import App\nimport helper\napp = App()\n"
        "@app.function()\ndef where(event, context):\n"
        "    return {'helper': helper.WHERE, 'path': sys.path[:2]}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "helper.py").write_text("WHERE = 'the shell folder'\n")
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "invoke", "where", str(app)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["helper"] == "the app folder"
    assert str(elsewhere) not in result["path"]


@pytest.mark.parametrize("installed", [True, False])
def test_skylift_counts_as_installed_exactly_when_importlib_metadata_finds_it(
    installed, tmp_path, monkeypatch
):
    import importlib.metadata

    from skylift.runtime import environ

    if not installed:  # an import path without site-packages: a bare source tree
        (tmp_path / "skylift_extras-1.0.dist-info").mkdir()  # another project's
        (tmp_path / "Sky_Lift-2.0.dist-info").mkdir()  # normalized, not "skylift"
        monkeypatch.setattr(sys, "path", [str(tmp_path), str(tmp_path / "missing")])
    try:
        importlib.metadata.distribution("skylift")
        found = True
    except importlib.metadata.PackageNotFoundError:
        found = False
    assert found is installed
    assert environ._installed() is installed


def test_invoke_on_a_server_is_one_request_without_the_engine():
    # Nothing listens on port 9: the request fails, after the imports this checks.
    modules = imported_by("invoke", "change", "--url", "http://127.0.0.1:9")
    assert "skylift.client" in modules
    assert not {"asyncio", "skylift.engine.oneshot", "skylift.engine.zygote"} & modules
