"""The SAM apps under tests/sam_apps/, one per feature, run as a user runs them.

Each app's expect.json says what a user sees: the error naming what to change without
--parameter-overrides (`error`), the warnings at load (`warns`), the result of
`skylift invoke` (`invoke`) and the schedules listed (`schedules`). Every template there
must load, or fail with a message naming what to change.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from skylift.errors import SkyliftError
from skylift.sam import load

APPS = Path(__file__).parent / "sam_apps"
NAMES = sorted(p.name for p in APPS.iterdir() if (p / "template.yaml").is_file())


def skylift(*args: str, stdin: str = "{}") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy(name: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The app copied out of the source tree (a build writes beside its template)."""
    root = tmp_path / name
    shutil.copytree(APPS / name, root)
    return root, json.loads((root / "expect.json").read_text())


def app_args(root: Path, expect: dict[str, Any]) -> list[str]:
    args = (
        [str(root)] if "template" not in expect else ["--template", str(root / expect["template"])]
    )
    for key, value in expect.get("parameters", {}).items():
        args += ["--parameter-overrides", f"{key}={value}"]
    return args


def test_every_app_has_what_it_expects() -> None:
    assert NAMES, "tests/sam_apps/ holds the apps"
    for name in NAMES:
        assert (APPS / name / "expect.json").is_file(), f"{name} has no expect.json"


@pytest.mark.parametrize("name", NAMES)
def test_the_template_loads_or_names_what_to_change(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, expect = copy(name, tmp_path)
    template = root / expect.get("template", "template.yaml")
    if "error" in expect:
        with pytest.raises(SkyliftError) as caught:
            load(template)
        for fragment in expect["error"]:
            assert fragment in str(caught.value)
    with caplog.at_level(logging.WARNING, logger="skylift.sam"):
        specs, _ = load(template, expect.get("parameters"))
    assert specs
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    for fragment in expect.get("warns", []):
        assert fragment in warnings
    if not expect.get("warns"):
        assert "does not honour" not in warnings


@pytest.mark.parametrize(
    "name", [n for n in NAMES if "invoke" in json.loads((APPS / n / "expect.json").read_text())]
)
def test_skylift_invoke_runs_the_app(name: str, tmp_path: Path) -> None:
    root, expect = copy(name, tmp_path)
    invoke = expect["invoke"]
    event = json.dumps(invoke.get("event", {}))
    done = skylift(
        "invoke", invoke["function"], *app_args(root, expect), "--event", "-", stdin=event
    )
    assert done.returncode == invoke.get("exit", 0), done.stderr
    if "result" in invoke:
        assert json.loads(done.stdout) == invoke["result"]
    if "stderr" in invoke:
        assert invoke["stderr"] in done.stderr


def test_schedules_of_every_kind_are_listed(tmp_path: Path) -> None:
    root, expect = copy("schedules", tmp_path)
    done = skylift("schedules", *app_args(root, expect))
    assert done.returncode == 0, done.stderr
    listed = [line.split("\t")[1] for line in done.stdout.splitlines() if "\t" in line]
    assert listed == expect["schedules"]


def test_a_scheduler_resource_and_v2_event_deliver_their_input(tmp_path: Path) -> None:
    root, _ = copy("schedules", tmp_path)
    (spec,) = load(root)[0]
    inputs = {s.expression: s.input for s in spec.schedules}
    assert inputs["rate(2 hours)"] == '{"from": "v2"}'
    assert inputs["rate(4 hours)"] == '{"from": "resource"}'
    assert inputs["rate(1 hour)"] is None  # a Schedule (rule) delivers the Scheduled Event


def test_build_installs_once_and_reuses_the_folder(tmp_path: Path) -> None:
    root, _ = copy("requirements", tmp_path)
    first = skylift("build", str(root))
    assert first.returncode == 0, first.stderr
    assert "pip install -r" in first.stdout
    assert "Successfully installed skylift-sample-dep-1.0" in first.stdout
    (folder,) = (root / ".skylift-build" / "deps").iterdir()
    again = skylift("build", str(root))
    assert again.returncode == 0, again.stderr
    assert "pip install" not in again.stdout
    assert f"function 'HelloFunction': up to date in {folder}" in again.stdout


def test_a_failed_install_names_the_package_and_keeps_what_worked(tmp_path: Path) -> None:
    root, _ = copy("requirements", tmp_path)
    assert skylift("build", str(root)).returncode == 0
    (built,) = (root / ".skylift-build" / "deps").iterdir()
    requirements = root / "hello" / "requirements.txt"
    requirements.write_text("./wheels/skylift_missing_dep-1.0-py3-none-any.whl\n")

    done = skylift("invoke", "HelloFunction", str(root))

    assert done.returncode == 2
    assert "pip could not install" in done.stderr
    assert "skylift_missing_dep-1.0-py3-none-any.whl" in done.stderr
    assert "No such file or directory" in done.stderr
    assert [p.name for p in (root / ".skylift-build" / "deps").iterdir()] == [built.name]
    assert (built / "skylift_sample_dep" / "__init__.py").is_file()


def test_a_sam_build_output_is_not_installed_again(tmp_path: Path) -> None:
    root, _ = copy("sam-built", tmp_path)
    done = skylift("build", "--template", str(root / ".aws-sam" / "build" / "template.yaml"))
    assert done.returncode == 0, done.stderr
    assert "pip" not in done.stdout
    assert not (root / ".aws-sam" / "build" / ".skylift-build").exists()


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("requirements", "installed by skylift build"),
        ("layers", ["b", "only a", "b site-packages"]),
    ],
)
def test_skylift_up_builds_first_and_sandboxed_instances_import_it(
    name: str, body: Any, tmp_path: Path
) -> None:
    import httpx

    from skylift.testing import ServerLog, serve

    root, _ = copy(name, tmp_path)
    log = ServerLog()
    with serve(str(root), log=log, timeout=90) as url:
        response = httpx.get(f"{url}/{name}", timeout=30)
    assert response.status_code == 200, log.text
    assert response.json() == body
    if name == "requirements":
        assert "Successfully installed skylift-sample-dep-1.0" in log.text


def test_a_lambda_function_with_code_zipfile_runs_as_index_py(tmp_path: Path) -> None:
    root, _ = copy("lambda-function", tmp_path)
    done = skylift("invoke", "ZipFileInline", str(root))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "zipfile"
    assert (root / ".skylift-build" / "inline" / "ZipFileInline" / "index.py").is_file()


def test_a_changed_requirements_txt_reloads_and_a_failed_install_keeps_serving(
    tmp_path: Path,
) -> None:
    import time

    import httpx

    from skylift.testing import ServerLog, serve

    root, _ = copy("requirements", tmp_path)
    log = ServerLog()
    with serve(str(root), log=log, timeout=90) as url:
        assert httpx.get(f"{url}/requirements").json() == "installed by skylift build"
        requirements = root / "hello" / "requirements.txt"
        requirements.write_text("./wheels/skylift_missing_dep-1.0-py3-none-any.whl\n")
        deadline = time.monotonic() + 60
        while "does not load; still serving" not in log.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "requirements.txt changed but does not load" in log.text, log.text
        assert "pip could not install" in log.text
        assert httpx.get(f"{url}/requirements").json() == "installed by skylift build"
