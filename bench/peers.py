"""The make-change handler wrapped for each peer server of `bench/http_bench.py`.

Every wrapper builds the smallest event the handler reads (`{"body": ...}`) and returns
its proxy response as is, so every server runs the same handler code:

    python bench/peers.py fastapi|flask|asgi PORT      # uvicorn / Flask's dev server
    gunicorn -w 2 'peers:flask_app()'                    # Flask on gunicorn
    chalice local / serverless offline                   # projects from `write_*_project`

(No `from __future__ import annotations`: FastAPI reads the `Request` annotation at
runtime.)
"""

import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "make-change" / "app.py"


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("make_change_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.change


def fastapi_app() -> Any:
    from fastapi import FastAPI, Request, Response

    handler = load_handler()
    app = FastAPI()

    @app.post("/change")
    async def change(request: Request) -> Response:
        result = handler({"body": (await request.body()).decode()}, None)
        return Response(result["body"], result["statusCode"], result["headers"])

    return app


def flask_app() -> Any:
    from flask import Flask, Response, request

    handler = load_handler()
    app = Flask("make-change")

    @app.post("/change")
    def change() -> Response:
        result = handler({"body": request.get_data(as_text=True)}, None)
        return Response(result["body"], result["statusCode"], result["headers"])

    return app


def asgi_app() -> Any:
    """The ceiling: a bare ASGI callable that calls the handler in-process."""
    handler = load_handler()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        result = handler({"body": body.decode()}, None)
        headers = [(k.lower().encode(), v.encode()) for k, v in result["headers"].items()]
        await send(
            {"type": "http.response.start", "status": result["statusCode"], "headers": headers}
        )
        await send({"type": "http.response.body", "body": result["body"].encode()})

    return app


# A loader both generated projects use: the example's module, by path, unchanged.
LOADER = f"""
import importlib.util

_spec = importlib.util.spec_from_file_location("make_change_app", {str(EXAMPLE)!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
change = _module.change
"""

CHALICE_APP = (
    LOADER
    + """
from chalice import Chalice, Response

app = Chalice(app_name="make-change")


@app.route("/change", methods=["POST"], content_types=["application/json"])
def route():
    raw = app.current_request.raw_body
    result = change({"body": raw.decode() if raw else None}, None)
    return Response(result["body"], result["headers"], result["statusCode"])
"""
)

SERVERLESS_YML = """
service: make-change
frameworkVersion: "3"
provider:
  name: aws
  runtime: python3.11
  region: us-east-1
plugins:
  - serverless-offline
functions:
  change:
    handler: handler.change
    events:
      - http:
          path: change
          method: post
"""


def write_chalice_project(folder: Path) -> Path:
    """A `chalice new-project` layout whose route wraps the handler; returns its folder."""
    project = folder / "make-change-chalice"
    (project / ".chalice").mkdir(parents=True, exist_ok=True)
    (project / "app.py").write_text(CHALICE_APP)
    (project / "requirements.txt").write_text("")
    config = {"version": "2.0", "app_name": "make-change", "stages": {"dev": {}}}
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    return project


def write_serverless_project(folder: Path) -> Path:
    """A serverless.yml (python3 runtime, one http event) whose handler is the example's."""
    project = folder / "make-change-serverless"
    project.mkdir(parents=True, exist_ok=True)
    (project / "serverless.yml").write_text(SERVERLESS_YML)
    (project / "handler.py").write_text(LOADER)
    return project


SAM_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Change:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.change
      CodeUri: .
      Events:
        Api:
          Type: Api
          Properties:
            Path: /change
            Method: post
"""


def write_sam_project(folder: Path) -> Path:
    """A SAM template whose function is the example's app.py (copied beside it)."""
    project = folder / "make-change-sam"
    project.mkdir(parents=True, exist_ok=True)
    (project / "template.yaml").write_text(SAM_TEMPLATE)
    (project / "app.py").write_text(EXAMPLE.read_text())
    return project


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind in ("fastapi", "asgi"):
        import uvicorn

        uvicorn.run(
            fastapi_app() if kind == "fastapi" else asgi_app(),
            host="127.0.0.1",
            port=port,
            workers=1,
            log_level="warning",
            access_log=False,
        )
    elif kind == "flask":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        flask_app().run(host="127.0.0.1", port=port, threaded=True)
    else:
        sys.exit(f"unknown peer {kind!r}: fastapi, flask or asgi")


if __name__ == "__main__":
    main()
