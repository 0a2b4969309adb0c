"""`skylift export docker`: a Dockerfile and .dockerignore that serve the app with `skylift up`.

The output folder is the build context (`docker build OUT`). How skylift gets into the
image: by default the exporter copies the source tree skylift runs from (pyproject.toml,
README.md, src/skylift) into `skylift-dist/`, and the builder stage installs it with
pip, so the image runs exactly this skylift; `skylift_requirement` (`--skylift`) installs a
pip requirement instead (`skylift==0.1.0` from your index, a wheel URL, a git URL).
Nothing is built here: the files are what `docker build` needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import skylift
from skylift.export.model import AppModel
from skylift.export.plan import ExportError, File, Plan
from skylift.spec import PYTHON_RUNTIME

PORT = 8080
UID = 10001
HEALTH_PATH = "/_skylift/health"
STATE_DIR = "/app/.skylift"
SKYLIFT_DIST = "skylift-dist"
# Debian bookworm's tini (the init `docker run --init` uses), pinned as hadolint asks.
TINI = "tini=0.19.0-1+b3"
# Slim Debian images of the Docker Official `python` repository, pinned to a release.
PYTHON_IMAGES = {
    "3.11": "python:3.11.14-slim-bookworm",
    "3.12": "python:3.12.12-slim-bookworm",
    "3.13": "python:3.13.9-slim-bookworm",
}
# Never part of the image: local state, environments, caches, and the build's own files.
IGNORED = (
    ".skylift/",
    ".skylift-build/",
    ".aws-sam/",
    ".git/",
    ".venv/",
    "venv/",
    "**/__pycache__/",
    "**/*.py[cod]",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "Dockerfile",
    ".dockerignore",
)
_IGNORED_DIRS = frozenset(
    {
        ".skylift",
        ".skylift-build",
        ".aws-sam",
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        SKYLIFT_DIST,
    }
)


@dataclass(frozen=True)
class DockerExporter:
    """Plan a Dockerfile for `app` whose build context is `out`.

    `base_image` overrides the Python image chosen from the functions' runtime;
    `skylift_requirement` installs skylift from pip instead of this source tree.
    """

    out: Path
    base_image: str | None = None
    skylift_requirement: str | None = None

    def plan(self, app: AppModel) -> Plan:
        image = self.base_image or python_image(app)
        requirements = (app.code_dir / "requirements.txt").is_file()
        files = [
            File(
                "Dockerfile",
                dockerfile(app, image, requirements, self.skylift_requirement),
                "Dockerfile",
                app.name,
            ),
            File(".dockerignore", "".join(f"{line}\n" for line in IGNORED), "dockerignore"),
        ]
        notes: list[str] = []
        if self.skylift_requirement is None:
            files.extend(skylift_source_files())
        if self.out.resolve() != app.code_dir.resolve():
            files.extend(app_files(app.code_dir, self.out))
            notes.append(
                f"copied the app's code from {app.code_dir}: export again after changing it"
            )
        return Plan(tuple(files), tuple(notes))


def python_image(app: AppModel) -> str:
    """The pinned slim image for the functions' Python version (one interpreter serves all)."""
    versions = {
        s.runtime.removeprefix("python") for s in app.specs if PYTHON_RUNTIME.match(s.runtime)
    }
    if len(versions) > 1:
        raise ExportError(
            f"the functions use several Python runtimes ({', '.join(sorted(versions))}), but "
            "one image has one interpreter: use one runtime, or pass --base-image"
        )
    version = versions.pop() if versions else "3.11"
    if version not in PYTHON_IMAGES:
        raise ExportError(
            f"no pinned image for python{version} (known: {', '.join(PYTHON_IMAGES)}): "
            "pass --base-image python:X.Y.Z-slim-bookworm"
        )
    return PYTHON_IMAGES[version]


def dockerfile(
    app: AppModel, image: str, requirements: bool, skylift_requirement: str | None
) -> str:
    install = [f"./{SKYLIFT_DIST}" if skylift_requirement is None else _quote(skylift_requirement)]
    copy = [f"COPY {SKYLIFT_DIST}/ {SKYLIFT_DIST}/"] if skylift_requirement is None else []
    if requirements:
        copy.append("COPY requirements.txt ./")
        install.append("--requirement requirements.txt")
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{PORT}{HEALTH_PATH}', "
        "timeout=2).status != 200)"
    )
    lines = [
        "# syntax=docker/dockerfile:1",
        f"# Written by `skylift export docker` for {app.name}; the build context is this folder:",
        f"#   docker build -t {app.name} .",
        f"#   docker run --rm -p {PORT}:{PORT} {app.name}",
        "",
        "# Dependencies (skylift's and the app's) are installed into a virtual environment here,",
        "# so no compiler or pip cache reaches the final image.",
        f"FROM {image} AS builder",
        "WORKDIR /build",
        *copy,
        "RUN python -m venv /opt/venv \\",
        f"    && /opt/venv/bin/pip install --no-cache-dir {' '.join(install)}",
        "",
        f"FROM {image}",
        "ENV PATH=/opt/venv/bin:$PATH \\",
        "    PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1",
        "# tini runs as PID 1: it passes SIGTERM on to skylift (which then drains) and reaps",
        "# any orphaned process, which a Python PID 1 would leave as zombies.",
        "RUN apt-get update \\",
        f"    && apt-get install --yes --no-install-recommends {TINI} \\",
        "    && rm -rf /var/lib/apt/lists/*",
        f"RUN useradd --system --uid {UID} --user-group --home-dir /app --no-create-home skylift",
        "COPY --from=builder /opt/venv /opt/venv",
        "WORKDIR /app",
        "COPY . .",
        "# Queues, buckets and server.json live in .skylift/: the only folder skylift writes.",
        f"RUN mkdir -p {STATE_DIR} && chown {UID}:{UID} {STATE_DIR}",
        f"USER {UID}:{UID}",
        f"EXPOSE {PORT}",
        "# The health endpoint answers only once the init phase has run and the triggers are up.",
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\",
        f'    CMD ["python", "-c", "{probe}"]',
        'ENTRYPOINT ["/usr/bin/tini", "--"]',
        f'CMD ["skylift", "up", "--host", "0.0.0.0", "--port", "{PORT}", "--no-reload", '
        f'"{app.target}"]',
    ]
    return "\n".join(lines) + "\n"


def _quote(requirement: str) -> str:
    return "'" + requirement.replace("'", "'\\''") + "'"


def skylift_source_root() -> Path:
    """The source tree skylift runs from (an editable or source install), or ExportError."""
    package = Path(skylift.__file__).resolve().parent
    root = package.parent.parent
    pyproject = root / "pyproject.toml"
    if (
        package.parent.name != "src"
        or not pyproject.is_file()
        or 'name = "skylift"' not in (pyproject.read_text(encoding="utf-8"))
    ):
        raise ExportError(
            f"skylift runs from {package}, an installed package, not a source tree to copy: "
            "pass --skylift with a pip requirement the image can install "
            "(e.g. --skylift 'skylift==0.1.0' from your package index)"
        )
    return root


def skylift_source_files() -> list[File]:
    """skylift's own source, for the builder stage to install: what its wheel is built from."""
    root = skylift_source_root()
    files = [
        File(f"{SKYLIFT_DIST}/{name}", kind="skylift source", source=str(root / name))
        for name in ("pyproject.toml", "README.md", "LICENSE")
        if (root / name).is_file()
    ]
    for path in _walk(root / "src" / "skylift"):
        if path.suffix in (".py", ".typed"):
            relative = path.relative_to(root).as_posix()
            files.append(
                File(f"{SKYLIFT_DIST}/{relative}", kind="skylift source", source=str(path))
            )
    return files


def app_files(code_dir: Path, out: Path) -> list[File]:
    """The app's code, for a build context other than its own folder."""
    skip = out.resolve()
    files = []
    for path in _walk(code_dir, skip):
        if path.name in ("Dockerfile", ".dockerignore") or path.suffix in (".pyc", ".pyo"):
            continue
        relative = path.relative_to(code_dir).as_posix()
        files.append(File(relative, kind="app code", source=str(path)))
    return files


def _walk(root: Path, skip: Path | None = None) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        subdirs[:] = sorted(
            d for d in subdirs if d not in _IGNORED_DIRS and (here / d).resolve() != skip
        )
        for name in sorted(names):
            yield here / name
