"""A SAM app served by `skylift up` answers /openapi.json (paths, methods, path
parameters) and /docs, unless the template has routes of its own there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

from jsonschema import Draft202012Validator

from skylift.testing import serve

HANDLERS = """
import json

def orders(event, context):
    order = (event.get("pathParameters") or {}).get("id", "all")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"order": order})}

def legacy(event, context):
    return {"statusCode": 200, "body": "legacy"}

def docs(event, context):
    return {"statusCode": 200, "body": "the team's own docs"}
"""

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: handlers.orders
      Events:
        List:
          Type: HttpApi
          Properties: {Path: /orders, Method: get}
        Get:
          Type: HttpApi
          Properties: {Path: "/orders/{id}", Method: get}
        Cancel:
          Type: Api
          Properties: {Path: "/orders/{id}", Method: delete}
  Legacy:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: handlers.legacy
      Events:
        Any:
          Type: Api
          Properties: {Path: "/legacy/{proxy+}", Method: any}
"""


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def write(folder: Path, template: str) -> Path:
    folder.mkdir()
    (folder / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    (folder / "template.yaml").write_text(textwrap.dedent(template))
    return folder


def test_a_sam_app_serves_its_openapi_document_and_swagger_ui(tmp_path: Path) -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    app = write(tmp_path / "orders", TEMPLATE)
    with serve(str(app), options=["--quiet"]) as url:
        status, kind, body = get(url + "/openapi.json")
        assert (status, kind) == (200, "application/json")
        doc = json.loads(body)
        Draft202012Validator(OPENAPI_31).validate(doc)
        assert doc["info"]["title"] == "orders"
        paths = doc["paths"]
        assert set(paths) == {"/orders", "/orders/{id}", "/legacy/{proxy}"}
        assert set(paths["/orders"]) == {"get"}
        assert set(paths["/orders/{id}"]) == {"get", "delete"}
        assert paths["/orders/{id}"]["delete"]["parameters"] == [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
        assert {"get", "post", "put", "patch", "delete"} <= set(paths["/legacy/{proxy}"])

        status, kind, page = get(url + "/docs")
        assert status == 200 and kind.startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/docs/[^"]+)"', page.decode())
        assert "/docs/swagger-ui-bundle.js" in assets
        for asset in assets:  # served from the installed package, not a CDN
            status, _, data = get(url + asset)
            assert status == 200 and data, asset
        assert get(url + "/docs/..%2Fhandlers.py")[0] == 404
        # The app's own routes answer as before.
        assert json.loads(get(url + "/orders/7")[2]) == {"order": "7"}

        # schemathesis against the served document: no 5xx, no answer off its schema.
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                url + "/openapi.json",
                "--max-examples",
                "10",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--seed",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-3000:]


def test_a_templates_own_route_at_docs_keeps_it(tmp_path: Path) -> None:
    own = TEMPLATE + textwrap.dedent(
        """
          Docs:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: handlers.docs
              Events:
                Page:
                  Type: HttpApi
                  Properties: {Path: /docs, Method: get}
        """
    ).replace("\n", "\n  ")
    app = write(tmp_path / "own", own)
    with serve(str(app), options=["--quiet"]) as url:
        assert get(url + "/docs")[2] == b"the team's own docs"
        doc = json.loads(get(url + "/openapi.json")[2])
        assert "/docs" in doc["paths"]  # it is one of the app's routes


def test_a_decorator_app_without_docs_gets_no_document(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from skylift import App\napp = App()\n\n"
        "@app.http('/hi', methods=['GET'])\ndef hi(event, context):\n"
        "    return {'statusCode': 200, 'body': 'hi'}\n"
    )
    with serve(str(tmp_path), options=["--quiet"]) as url:
        assert get(url + "/openapi.json")[0] == 404  # it opts in with App(docs=True)
