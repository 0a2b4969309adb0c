"""`skylift build`: a function's (or layer's) requirements.txt installed, as `sam build` does.

Each install goes into `.skylift-build/deps/<hash>/`, the hash of the requirements
file's bytes and the Python version (`major.minor`) that runs the code: unchanged
requirements reuse it. pip installs into a staging folder renamed into place only when
it succeeded, so a failed install changes nothing that worked before.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from skylift.errors import LoadError
from skylift.interpreters import CURRENT, Interpreter

REQUIREMENTS = "requirements.txt"


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Install:
    """One requirements file and the folder its packages go into."""

    owner: str  # "function 'Hello'" or "layer 'Deps'"
    requirements: Path
    folder: Path
    python: str = sys.executable  # the interpreter whose pip installs (the one that runs it)

    @property
    def done(self) -> bool:
        return self.folder.is_dir()


def install_for(
    owner: str, source_dir: Path, build_root: Path, python: Interpreter = CURRENT
) -> Install | None:
    """The install `source_dir`'s requirements.txt needs, or None without one; `python`
    is the interpreter that runs the code (its version is part of the folder's key)."""
    requirements = source_dir / REQUIREMENTS
    if not requirements.is_file():
        return None
    digest = hashlib.sha256(requirements.read_bytes() + python.version.encode()).hexdigest()
    return Install(owner, requirements, build_root / "deps" / digest[:16], python.path)


def run(installs: Iterable[Install], echo: Callable[[str], None] = print) -> list[Install]:
    """Install what is not installed yet, pip's output shown through `echo`; the ones run.

    Raises LoadError naming the requirement pip could not install and its error.
    """
    ran: list[Install] = []
    seen: set[Path] = set()
    for install in installs:
        if install.done or install.folder in seen:
            continue
        seen.add(install.folder)
        python = "" if install.python == sys.executable else f" (with {install.python})"
        echo(f"skylift build: {install.owner}: pip install -r {install.requirements}{python}")
        _install(install, echo)
        ran.append(install)
    return ran


def _install(install: Install, echo: Callable[[str], None]) -> None:
    install.folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=install.folder.parent))
    command = [
        install.python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(staging),
        "-r",
        str(install.requirements),
    ]
    lines: list[str] = []
    try:
        with subprocess.Popen(
            command,
            cwd=install.requirements.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as pip:
            assert pip.stdout is not None
            for line in pip.stdout:
                lines.append(line.rstrip())
                echo(f"  {line.rstrip()}")
        if pip.returncode != 0:
            raise LoadError(
                f"{install.owner}: pip could not install {install.requirements}"
                f"{_failed_package(lines)}: {_error(lines)}; fix the requirement and run "
                "skylift build again (nothing installed before was changed)"
            )
        try:
            staging.rename(install.folder)
        except OSError:  # installed meanwhile by another build: the same requirements
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_PACKAGE = re.compile(
    r"(?:for|satisfies the requirement|version of|Failed to build) ([\w.\-\[\]]+)"
)


_STEP = re.compile(r"^\s*(?:Collecting|Processing) (\S+)")


def _failed_package(lines: list[str]) -> str:
    """The requirement pip was at when it failed: its own ERROR line's, else its last step's."""
    for line in reversed(lines):
        match = _PACKAGE.search(line)
        if match and "ERROR" in line:
            return f" (package {match.group(1).rstrip(':')})"
    for line in reversed(lines):
        step = _STEP.match(line)
        if step:
            return f" (package {step.group(1)})"
    return ""


def _error(lines: list[str]) -> str:
    errors = [line.strip() for line in lines if line.strip().startswith("ERROR")]
    return " / ".join(errors[-2:]) or (lines[-1] if lines else "pip failed")
