"""`skylift init`: a new app whose own `make all` passes in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def skylift(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def check_schema(schema: str, *files: Path) -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def clean_environment() -> dict[str, str]:
    """A user's shell: not this suite's venv, nor an outer make's variables."""
    drop = {"VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHONPATH"}
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    paths = environment.get("PATH", "").split(os.pathsep)
    environment["PATH"] = os.pathsep.join(p for p in paths if Path(p) != BIN)
    return environment


def test_a_new_app_passes_its_own_make_all_in_a_fresh_folder(tmp_path: Path) -> None:
    done = skylift("init", "demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    app = tmp_path / "demo"
    for name in (
        "app.py",
        "tests/test_app.py",
        "requirements.txt",
        "Makefile",
        "Dockerfile",
        ".dockerignore",
        "README.md",
        ".github/workflows/ci.yml",
        ".circleci/config.yml",
    ):
        assert (app / name).is_file(), name
    assert not list(app.rglob("__pycache__"))
    assert "make run" in (app / "README.md").read_text()
    check_schema("vendor.github-workflows", app / ".github/workflows/ci.yml")
    check_schema("vendor.circle-ci", app / ".circleci/config.yml")
    # Its own venv, skylift installed as the Makefile says, lint and tests: what CI runs.
    python = Path(sys.base_prefix) / "bin" / "python3"
    made = subprocess.run(
        ["make", "all", f"PYTHON={python}"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_environment(),
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert "2 passed" in made.stdout
    assert (app / ".venv" / "bin" / "skylift").exists()


def test_a_new_sam_app_loads_and_its_tests_pass(tmp_path: Path) -> None:
    done = skylift("init", "sam-demo", "--template", "sam", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    app = tmp_path / "sam-demo"
    assert (app / "template.yaml").is_file() and (app / "hello" / "app.py").is_file()
    assert "template.yaml" in (app / "Dockerfile").read_text()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "2 passed" in tests.stdout


def test_this_projects_ci_files_are_valid() -> None:
    check_schema("vendor.github-workflows", ROOT / ".github/workflows/ci.yml")
    check_schema("vendor.circle-ci", ROOT / ".circleci/config.yml")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Demo", "'Demo' is not a usable app name"),
        ("a", "'a' is not a usable app name"),
        ("taken", "already exists and is not empty"),
    ],
)
def test_init_refuses_a_bad_name_or_a_used_folder(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    done = skylift("init", name, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
