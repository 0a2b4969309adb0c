"""Turn the APP argument of the CLI into what to load, without importing user code."""

from __future__ import annotations

import os
from dataclasses import dataclass

from skylift.errors import LoadError

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")


@dataclass(frozen=True)
class AppTarget:
    """A module holding a skylift `App` (the decorator front door)."""

    code_dir: str
    module: str
    attribute: str | None = None


@dataclass(frozen=True)
class TemplateTarget:
    """An AWS SAM template."""

    path: str


Target = AppTarget | TemplateTarget


def home(target: Target) -> str:
    """The app's folder: where its `.skylift/` state lives."""
    if isinstance(target, AppTarget):
        return target.code_dir
    return os.path.dirname(os.path.abspath(target.path))


def resolve_target(app: str | None = None, template: str | None = None) -> Target:
    """Where the functions are: a directory, a file, `module:attribute`, or a template.

    >>> resolve_target("examples/make-change")  # doctest: +SKIP
    AppTarget(code_dir='/…/examples/make-change', module='app', attribute=None)
    """
    if template is not None:
        if not os.path.isfile(template):
            raise LoadError(f"template {template!r} does not exist: check the --template path")
        return TemplateTarget(os.path.abspath(template))
    app = app or "."
    if os.path.isdir(app):
        directory = os.path.abspath(app)
        if os.path.isfile(os.path.join(directory, "app.py")):
            return AppTarget(directory, "app")
        for name in TEMPLATE_NAMES:
            if os.path.isfile(os.path.join(directory, name)):
                return TemplateTarget(os.path.join(directory, name))
        raise LoadError(
            f"{app!r} holds neither app.py nor template.yaml: point at a directory that "
            "has one, a .py file, a template, or module:attribute"
        )
    path, _, attribute = app.partition(":")
    if path.endswith((".yaml", ".yml", ".json")) and os.path.isfile(path):
        return TemplateTarget(os.path.abspath(path))
    if path.endswith(".py"):
        if not os.path.isfile(path):
            raise LoadError(f"{path!r} does not exist: check the path")
        directory, filename = os.path.split(os.path.abspath(path))
        return AppTarget(directory, filename[:-3], attribute or None)
    if attribute and path.replace(".", "").replace("_", "").isalnum():
        return AppTarget(os.getcwd(), path, attribute)
    raise LoadError(
        f"cannot find the app {app!r}: give a directory holding app.py or template.yaml, "
        "a .py file, a template file, or module:attribute (importable from here)"
    )
