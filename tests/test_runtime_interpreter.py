"""A SAM function runs on the Python its `Runtime` names when that version is installed
(a real second interpreter: pyenv's, uv's or one on PATH), its requirements built for
that version; otherwise on skylift's own, with one warning naming both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skylift.interpreters import CURRENT, MINIMUM, find

APPS = Path(__file__).parent / "sam_apps"
WHEEL = APPS / "requirements" / "hello" / "wheels"
TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Which:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: {runtime}
      Handler: app.handler
      CodeUri: src/
      Events:
        Get:
          Type: HttpApi
          Properties: {{Path: /which, Method: get}}
"""
APP = """\
import os
import sys

import skylift_sample_dep


def handler(event, context):
    return {
        "version": "%d.%d" % sys.version_info[:2],
        "executable": sys.executable,
        "execution_env": os.environ["AWS_EXECUTION_ENV"],
        "dep": skylift_sample_dep.__file__,
    }
"""


def other_python() -> str | None:
    """An installed Python skylift can run instances on, other than its own."""
    for minor in range(MINIMUM[1], 20):
        version = f"3.{minor}"
        if version != CURRENT.version and find(version) is not None:
            return version
    return None


def make_app(root: Path, runtime: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "template.yaml").write_text(TEMPLATE.format(runtime=runtime))
    (root / "src" / "app.py").write_text(APP)
    shutil.copytree(WHEEL, root / "src" / "wheels")
    (root / "src" / "requirements.txt").write_text(
        "./wheels/skylift_sample_dep-1.0-py3-none-any.whl\n"
    )
    return root


def invoke(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", "invoke", "Which", str(root)],
        input="{}",
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_runtime_names_the_interpreter_and_its_build(tmp_path: Path) -> None:
    version = other_python()
    if version is None:
        pytest.skip(f"no Python 3.11+ other than {CURRENT.version} is installed")
    root = make_app(tmp_path / "app", f"python{version}")

    done = invoke(root)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == version
    assert result["execution_env"] == f"AWS_Lambda_python{version}"
    assert result["executable"] == find(version).path  # type: ignore[union-attr]
    # Installed by that interpreter's pip, into a folder keyed by its version.
    assert f"(with {find(version).path})" in done.stderr  # type: ignore[union-attr]
    assert result["dep"].startswith(str(root / ".skylift-build" / "deps"))
    assert "is not installed" not in done.stderr


def test_a_runtime_not_installed_warns_once_and_runs_on_skylifts_python(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", "python3.99")

    done = invoke(root)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == CURRENT.version
    assert result["execution_env"] == f"AWS_Lambda_python{CURRENT.version}"
    warning = (
        f"Runtime python3.99 (function 'Which'): Python 3.99 is not installed (not on PATH as "
        f"python3.99, not found by uv or pyenv); its instances run on Python {CURRENT.version}"
    )
    assert done.stderr.count(warning) == 1


def test_skylift_up_serves_it_on_that_interpreter(tmp_path: Path) -> None:
    import httpx

    from skylift.testing import ServerLog, serve

    version = other_python()
    if version is None:
        pytest.skip(f"no Python 3.11+ other than {CURRENT.version} is installed")
    root = make_app(tmp_path / "app", f"python{version}")
    log = ServerLog()
    with serve(str(root), log=log, timeout=120) as url:
        first = httpx.get(f"{url}/which", timeout=60)
        second = httpx.get(f"{url}/which", timeout=60)
    assert first.status_code == 200, log.text
    assert first.json()["version"] == second.json()["version"] == version
