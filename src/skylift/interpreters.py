"""Which Python runs a function: the version its `Runtime` names (`python3.12`), when that
version is installed, else skylift's own with a warning (once per runtime).

Looked for, in order: skylift's own interpreter, pyenv's `$PYENV_ROOT/versions/3.X.*`
(newest first), `python3.X` on PATH, and `uv python find 3.X`.
Each candidate is asked for its real path and version once; the answer is kept for the
life of the process.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

logger = logging.getLogger("skylift.runtime")
_RUNTIME = re.compile(r"^python(3\.\d+)$")
_PROBE = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"
_warned: set[str] = set()


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter: its executable and its `major.minor` version."""

    path: str
    version: str

    @property
    def own(self) -> bool:
        """Whether this is the interpreter skylift itself runs on."""
        return self.version == CURRENT.version


MINIMUM = (3, 11)  # pyproject's requires-python: the worker's code runs on nothing older
CURRENT = Interpreter(sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}")


def for_runtime(runtime: str, function: str = "") -> Interpreter:
    """The interpreter instances of a function with `runtime` run on.

    >>> for_runtime("python3.11").version  # doctest: +SKIP
    '3.11'
    """
    match = _RUNTIME.match(runtime)
    if match is None or match.group(1) == CURRENT.version:
        return CURRENT
    if tuple(int(n) for n in match.group(1).split(".")) < MINIMUM:
        _warn_once(
            runtime,
            "Runtime %s%s: skylift's instance side needs Python %d.%d or newer; its instances "
            "run on Python %s (%s) instead",
            runtime,
            f" (function {function!r})" if function else "",
            *MINIMUM,
            CURRENT.version,
            CURRENT.path,
        )
        return CURRENT
    found = find(match.group(1))
    if found is not None:
        return found
    if runtime not in _warned:
        _warned.add(runtime)
        logger.warning(
            "Runtime %s%s: Python %s is not installed (not on PATH as python%s, not found by "
            "uv or pyenv); its instances run on Python %s (%s) instead. Install it (e.g. "
            "`uv python install %s` or `pyenv install %s`) to run the runtime it names",
            runtime,
            f" (function {function!r})" if function else "",
            match.group(1),
            match.group(1),
            CURRENT.version,
            CURRENT.path,
            match.group(1),
            match.group(1),
        )
    return CURRENT


def _warn_once(runtime: str, message: str, *args: object) -> None:
    if runtime not in _warned:
        _warned.add(runtime)
        logger.warning(message, *args)


@cache
def find(version: str) -> Interpreter | None:
    """An installed Python `version` ("3.12"), or None."""
    for candidate in _candidates(version):
        found = _probe(candidate)
        if found is not None and found.version == version:
            return found
    return None


def _candidates(version: str) -> list[str]:
    # pyenv's own binaries first: its shims on PATH start a shell per call.
    out: list[str] = []
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = root / "versions"
    if versions.is_dir():
        pattern = re.compile(rf"{re.escape(version)}\.\d+")
        installed = [p for p in versions.iterdir() if pattern.fullmatch(p.name)]
        installed.sort(key=lambda p: int(p.name.rsplit(".", 1)[1]), reverse=True)
        out += [str(p / "bin" / f"python{version}") for p in installed]
    on_path = shutil.which(f"python{version}")
    if on_path:
        out.append(on_path)
    uv = shutil.which("uv")
    if uv:
        try:
            done = subprocess.run(
                [uv, "python", "find", "--no-project", version],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            out.append(done.stdout.strip().splitlines()[-1])
    return out


def _probe(path: str) -> Interpreter | None:
    try:
        done = subprocess.run(
            [path, "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    return Interpreter(lines[0], lines[1])
