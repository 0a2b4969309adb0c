"""The make-change handler wrapped in FastAPI and in Flask, for `bench/http_bench.py`.

Run as `python bench/peers.py fastapi|flask PORT`. The wrapper builds the smallest
event the handler reads and returns its proxy response as is, so every server runs the
same handler code. (No `from __future__ import annotations`: FastAPI reads the
`Request` annotation at runtime.)
"""

import importlib.util
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


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "fastapi":
        import uvicorn

        uvicorn.run(
            fastapi_app(),
            host="127.0.0.1",
            port=port,
            workers=1,
            log_level="warning",
            access_log=False,
        )
    else:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        flask_app().run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()
