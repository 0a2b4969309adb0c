"""Turn the APP argument of the CLI into what to load, without importing user code."""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
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
    """An AWS SAM template, and the values given for its parameters."""

    path: str
    parameters: tuple[tuple[str, str], ...] = ()


Target = AppTarget | TemplateTarget


def home(target: Target) -> str:
    """The app's folder: where its `.skylift/` state lives."""
    if isinstance(target, AppTarget):
        return target.code_dir
    return os.path.dirname(os.path.abspath(target.path))


def _imports_skylift(path: str) -> bool:
    """Whether the module at `path` imports skylift (read, never run)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return True  # let loading it report what is wrong
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "skylift" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "skylift":
            return True
    return False


def resolve_target(
    app: str | None = None,
    template: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Target:
    """Where the functions are: a directory, a file, `module:attribute`, or a template.

    `parameters` (a template's `--parameter-overrides`) are refused for an App.

    >>> resolve_target("examples/make-change")  # doctest: +SKIP
    AppTarget(code_dir='/…/examples/make-change', module='app', attribute=None)
    """
    target = _resolve(app, template)
    if not parameters:
        return target
    if isinstance(target, AppTarget):
        raise LoadError(
            "--parameter-overrides sets a SAM template's Parameters, but this app is a "
            f"skylift App ({target.module}.py): drop the option or pass --template"
        )
    return TemplateTarget(target.path, tuple(sorted(parameters.items())))


def _resolve(app: str | None, template: str | None) -> Target:
    if template is not None:
        if not os.path.isfile(template):
            raise LoadError(f"template {template!r} does not exist: check the --template path")
        return TemplateTarget(os.path.abspath(template))
    app = app or "."
    if os.path.isdir(app):
        directory = os.path.abspath(app)
        source = os.path.join(directory, "app.py")
        templates = [
            os.path.join(directory, n)
            for n in TEMPLATE_NAMES
            if os.path.isfile(os.path.join(directory, n))
        ]
        # SAM projects often keep a handler module named app.py beside template.yaml: the
        # template wins unless app.py imports skylift (a decorator app).
        if os.path.isfile(source) and (not templates or _imports_skylift(source)):
            return AppTarget(directory, "app")
        if templates:
            return TemplateTarget(templates[0])
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
