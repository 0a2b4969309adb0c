"""`skylift init NAME`: a new app with tests, a Makefile, CI files and a Dockerfile."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from skylift.cli.common import fail


@click.command()
@click.argument("name")
@click.option(
    "--template",
    "layout",
    type=click.Choice(["app", "sam"]),
    default="app",
    show_default=True,
    help="app: app.py with skylift's decorators; sam: template.yaml and a folder per "
    "function, as `sam init` lays them out.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to create the NAME folder. Default: here.",
)
def init(name: str, layout: str, parent: Path) -> None:
    """Create a new app in the folder NAME: one HTTP and one queue function, their tests,
    requirements.txt, a Makefile, GitHub Actions and CircleCI files, a Dockerfile."""
    from skylift import scaffold
    from skylift.aio import run
    from skylift.errors import SkyliftError
    from skylift.export.docker import DockerExporter
    from skylift.export.model import load_app
    from skylift.export.plan import write
    from skylift.loader import resolve_target

    if not scaffold.NAME.fullmatch(name):
        fail(
            f"{name!r} is not a usable app name: use 2-50 lowercase letters, digits and '-', "
            "starting with a letter (it names the folder, the image and the stack)"
        )
    root = parent / name
    if root.exists() and not root.is_dir():
        fail(f"{root} is a file: choose another NAME or --dir")
    if root.exists() and any(root.iterdir()):
        fail(f"{root} already exists and is not empty: choose another NAME or --dir")
    sam = layout == "sam"
    created = not root.exists()
    try:
        for relative, text in scaffold.files(name, sam).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        requirement = scaffold.skylift_requirement()
        exporter = DockerExporter(
            root, skylift_requirement=None if requirement.startswith("-e ") else requirement
        )
        target = (
            resolve_target(None, str(root / "template.yaml")) if sam else resolve_target(str(root))
        )
        models = []

        async def load() -> None:
            models.append(await load_app(target, name))

        run(load)
        write(exporter.plan(models[0]), root)
        for cache in root.rglob("__pycache__"):  # left by the init phase just run
            shutil.rmtree(cache, ignore_errors=True)
    except (SkyliftError, OSError) as exc:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        fail(f"cannot create {root}: {exc}")
    if requirement.startswith("-e ") or "@file:" in requirement:
        click.echo(
            f"skylift: note: the Makefile installs skylift from {requirement.split()[-1]}, "
            "which exists on this machine only: before pushing, set SKYLIFT in the Makefile "
            "to a release (skylift==VERSION) or a git URL, or the CI files cannot install it",
            err=True,
        )
    click.echo(f"created {root} ({'SAM template' if sam else 'app.py'}); next:", err=True)
    click.echo(f"  cd {root} && make run    # serve it on http://127.0.0.1:8080", err=True)
    click.echo("  make test    # its tests; `make all` (lint and tests) is what CI runs", err=True)


COMMANDS = (init,)
