"""SAM functions through real zygotes: environment before import, and init failures
reported per invocation with the error types Lambda uses."""

from __future__ import annotations

import json
import textwrap

import pytest

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    CodeUri: src/
Resources:
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Handler: reader.handler
      Environment:
        Variables:
          TABLE: !Sub "${AWS::StackName}-orders"
  BrokenImport:
    Type: AWS::Serverless::Function
    Properties:
      Handler: broken.handler
  BadSyntax:
    Type: AWS::Serverless::Function
    Properties:
      Handler: syntax.handler
  NoHandler:
    Type: AWS::Serverless::Function
    Properties:
      Handler: plain.missing
  InitRaises:
    Type: AWS::Serverless::Function
    Properties:
      Handler: raises.handler
"""


@pytest.fixture
def sam(live, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    files = {
        # Read at import time: the variable must already be set, as on Lambda.
        "reader.py": """
            import os
            TABLE = os.environ["TABLE"]
            def handler(event, context):
                return {"table": TABLE, "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
        """,
        "broken.py": "import module_that_does_not_exist\ndef handler(e, c): pass\n",
        "syntax.py": "def handler(e, c)\n    pass\n",
        "raises.py": "raise RuntimeError('no database')\n",
        "plain.py": "def handler(event, context):\n    return 1\n",
    }
    for name, source in files.items():
        (src / name).write_text(textwrap.dedent(source))
    return live(template=tmp_path / "template.yaml")


def error_of(result):
    assert result.error == "Unhandled"
    return json.loads(result.payload)


def test_environment_is_set_before_the_init_phase(sam):
    result = sam.invoke("Reader")
    assert json.loads(result.payload) == {"table": "skylift-orders", "name": "Reader"}


def test_import_error_is_runtime_import_module_error(sam):
    error = error_of(sam.invoke("BrokenImport"))
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'broken': No module named 'module_that_does_not_exist'"
    )


def test_syntax_error_is_user_code_syntax_error(sam):
    error = error_of(sam.invoke("BadSyntax"))
    assert error["errorType"] == "Runtime.UserCodeSyntaxError"
    assert error["errorMessage"].startswith("Syntax error in module 'syntax'")


def test_missing_handler_attribute_is_handler_not_found(sam):
    error = error_of(sam.invoke("NoHandler"))
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'missing' missing on module 'plain'"


def test_exception_at_import_is_reported_with_its_type(sam):
    error = error_of(sam.invoke("InitRaises"))
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "no database"
    assert sam.platform.faults["InitRaises"]["errorType"] == "RuntimeError"
