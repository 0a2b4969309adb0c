"""Template parameters: `--parameter-overrides` as SAM CLI reads it, and the load's checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skylift.errors import LoadError
from skylift.loader import TemplateTarget, resolve_target
from skylift.sam import load_template
from skylift.sam.parameters import parse_overrides

TEMPLATE = """\
Parameters:
  Stage:
    Type: String
    AllowedValues: [dev, prod]
  Greeting:
    Type: String
    Default: hello
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Environment:
        Variables:
          GREETING: !Sub "${Greeting} from ${Stage}"
          TABLE: !If [IsProd, live-table, !Ref "AWS::NoValue"]
"""
HANDLER = """\
import os
def handler(event, context):
    return {k: os.environ.get(k) for k in ("GREETING", "TABLE")}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "app.py").write_text(HANDLER)
    return tmp_path


def test_overrides_read_sam_cli_syntax() -> None:
    assert parse_overrides(["Stage=dev 'Greeting=hi there'", "Size=3"]) == {
        "Stage": "dev",
        "Greeting": "hi there",
        "Size": "3",
    }
    assert parse_overrides(["ParameterKey=Stage,ParameterValue=a=b"]) == {"Stage": "a=b"}


def test_an_override_that_is_not_key_value_names_the_option() -> None:
    with pytest.raises(LoadError, match=r"--parameter-overrides 'Stage' is not Key=Value"):
        parse_overrides(["Stage"])


def test_overrides_reach_refs_subs_and_conditions(project: Path) -> None:
    (dev,) = load_template(project, {"Stage": "dev"})
    (prod,) = load_template(project, {"Stage": "prod", "Greeting": "hi"})

    assert dev.environment == {"GREETING": "hello from dev"}  # NoValue drops TABLE
    assert prod.environment == {"GREETING": "hi from prod", "TABLE": "live-table"}


def test_a_parameter_without_default_or_override_stops_the_load(project: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_template(project)
    assert "parameter Stage has no Default and no value" in str(caught.value)
    assert "--parameter-overrides Stage=VALUE" in str(caught.value)


def test_an_override_of_an_undeclared_parameter_is_refused(project: Path) -> None:
    with pytest.raises(LoadError, match=r"sets Stag, which the template's Parameters do not"):
        load_template(project, {"Stag": "dev"})


def test_a_value_outside_allowed_values_is_refused(project: Path) -> None:
    with pytest.raises(LoadError, match=r"parameter Stage is 'qa', not one of its AllowedValues"):
        load_template(project, {"Stage": "qa"})


def test_overrides_for_a_skylift_app_are_refused(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import skylift\n")
    with pytest.raises(LoadError, match="drop the option or pass --template"):
        resolve_target(str(tmp_path), parameters={"Stage": "dev"})


def skylift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invoke_takes_parameter_overrides(project: Path) -> None:
    done = skylift("invoke", "Hello", str(project), "--parameter-overrides", "Stage=prod")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"GREETING": "hello from prod", "TABLE": "live-table"}


def test_invoke_without_a_required_parameter_names_it_and_the_option(project: Path) -> None:
    done = skylift("invoke", "Hello", str(project))
    assert done.returncode == 2
    assert "parameter Stage has no Default and no value" in done.stderr
    assert "--parameter-overrides Stage=VALUE" in done.stderr


def test_schedules_takes_parameter_overrides(project: Path) -> None:
    done = skylift("schedules", str(project), "--parameter-overrides", "Stage=dev")
    assert done.returncode == 0, done.stderr


def test_the_target_carries_the_overrides(project: Path) -> None:
    target = resolve_target(str(project), parameters={"Stage": "dev"})
    assert target == TemplateTarget(str(project / "template.yaml"), (("Stage", "dev"),))
