"""`skylift export docker`, linted by the real hadolint (nothing is built: no engine here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from export_apps import EXAMPLES, SHOP, all_apps, skylift, tool, write_app

import skylift as skylift_package
from skylift.export.docker import TINI


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )


def test_hadolint_finds_nothing_in_the_dockerfile_of_every_app(tmp_path: Path) -> None:
    for app in all_apps(tmp_path):
        out = tmp_path / "context" / app.name
        done = skylift("export", "docker", str(app), "--out", str(out))
        assert done.returncode == 0, done.stderr
        linted = hadolint(out / "Dockerfile")
        assert (linted.returncode, linted.stdout, linted.stderr) == (0, "", ""), app


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    linted = hadolint(bad)
    assert linted.returncode != 0
    assert "DL3007" in linted.stdout and "DL3013" in linted.stdout


def test_the_image_runs_skylift_up_as_a_non_root_user_with_a_health_check(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    (app / "requirements.txt").write_text("requests==2.32.3\n")
    done = skylift("export", "docker", str(app))
    assert done.returncode == 0, done.stderr
    text = (app / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages == [
        "FROM python:3.11.14-slim-bookworm AS builder",
        "FROM python:3.11.14-slim-bookworm",
    ]
    assert "--requirement requirements.txt" in text and "COPY requirements.txt ./" in text
    assert "USER 10001:10001" in text and "EXPOSE 8080" in text
    assert "http://127.0.0.1:8080/_skylift/health" in text
    assert text.rstrip().endswith(
        'ENTRYPOINT ["/usr/bin/tini", "--"]\n'
        'CMD ["skylift", "up", "--host", "0.0.0.0", "--port", "8080", "--no-reload", "."]'
    )  # tini is PID 1: signals reach skylift, orphans are reaped
    assert f"apt-get install --yes --no-install-recommends {TINI}" in text
    ignored = (app / ".dockerignore").read_text().splitlines()
    assert ".skylift/" in ignored and "**/__pycache__/" in ignored
    assert "build it with: docker build -t shop" in done.stderr


def test_the_build_context_holds_skyliftsource_tree_to_install(tmp_path: Path) -> None:
    done = skylift("export", "docker", str(EXAMPLES[0]), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    package = Path(skylift_package.__file__).parent
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    copied = tmp_path / "skylift-dist" / "src" / "skylift"
    assert {p.relative_to(copied).as_posix() for p in copied.rglob("*.py")} == modules
    assert 'name = "skylift"' in (tmp_path / "skylift-dist" / "pyproject.toml").read_text()
    # The app's code comes along when the context is not its own folder; state does not.
    assert (tmp_path / "app.py").read_text() == (EXAMPLES[0] / "app.py").read_text()


def test_the_app_code_is_copied_without_its_state_or_caches(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    (app / ".skylift").mkdir()
    (app / ".skylift" / "queues.db").write_text("state")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "app.cpython-311.pyc").write_text("cache")
    (app / "lib").mkdir()
    (app / "lib" / "helpers.py").write_text("X = 1\n")
    out = tmp_path / "context"
    done = skylift("export", "docker", str(app), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "lib" / "helpers.py").read_text() == "X = 1\n"
    assert not (out / ".skylift").exists() and not (out / "__pycache__").exists()


def test_skylift_from_a_pip_requirement_instead_of_this_source_tree(tmp_path: Path) -> None:
    done = skylift(
        "export", "docker", str(EXAMPLES[0]), "--out", str(tmp_path), "--skylift", "skylift==0.1.0"
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "Dockerfile").read_text()
    assert "pip install --no-cache-dir 'skylift==0.1.0'" in text
    assert not (tmp_path / "skylift-dist").exists() and "skylift-dist" not in text
    assert hadolint(tmp_path / "Dockerfile").returncode == 0


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_the_base_image_follows_the_functions_runtime(tmp_path: Path, runtime: str) -> None:
    template = tmp_path / "template.yaml"
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        f"    Properties: {{Handler: app.handler, Runtime: {runtime}, CodeUri: .}}\n"
    )
    done = skylift("export", "docker", "--template", str(template), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "Dockerfile" in done.stdout and not (tmp_path / "Dockerfile").exists()
    done = skylift("export", "docker", "--template", str(template))
    text = (tmp_path / "Dockerfile").read_text()
    assert f"FROM python:{runtime.removeprefix('python')}." in text
    assert text.rstrip().endswith('"8080", "--no-reload", "template.yaml"]')


def test_the_pinned_tini_is_the_one_debian_bookworm_ships() -> None:
    # A pin the archive no longer has would fail every `docker build`.
    os_release = Path("/etc/os-release")
    if not shutil.which("apt-cache") or "bookworm" not in (
        os_release.read_text() if os_release.exists() else ""
    ):
        pytest.skip("needs Debian bookworm's apt-cache (the images' base)")
    madison = subprocess.run(["apt-cache", "madison", "tini"], capture_output=True, text=True)
    versions = {line.split("|")[1].strip() for line in madison.stdout.splitlines() if "|" in line}
    if not versions:
        pytest.skip("apt-cache knows no tini: run apt-get update")
    assert TINI.split("=", 1)[1] in versions
