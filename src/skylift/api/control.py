"""skylift's own control API, on the gateway's port under `/_skylift/`.

- `GET /_skylift/health`: `{"status": "ok"}`, for container health checks and
  Kubernetes probes. This API is mounted only once the init phase has run and the
  sources (queues, schedules, uploads) are up, and uvicorn answers nothing before, so
  any answer at all means ready: there is no "starting" state to report.
- `GET /_skylift/status`: the server's concurrency budget, and per function its
  instances (busy, idle), the autoscaler's target and recent decisions, its limits,
  invocations, throttles, cold starts and HTTP routes. `skylift status` shows it.
- `PUT /_skylift/functions/{name}/scaling` with `{"min": N, "max": M}` (either may be
  left out): change the function's minimum warm instances and its reserved concurrency
  on the running server, as `skylift scale` does. The answer is the function's status.

Errors are JSON `{"message": ...}` with 400 (a bad request, nothing changed), 404 (no
such function or path) or 405.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from skylift.asgi_json import read_body, send_json
from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.engine.autoscaler import Autoscaler
from skylift.engine.budget import Budget
from skylift.engine.pool import Pool
from skylift.spec import CONTROL_PREFIX

MAX_BODY = 64 * 1024
RECENT_DECISIONS = 10


class ControlApi:
    def __init__(
        self,
        pools: Mapping[str, Pool],
        budget: Budget,
        autoscaler: Autoscaler,
        sandbox: str | None = None,
    ) -> None:
        self.pools = pools
        self.budget = budget
        self.autoscaler = autoscaler
        self.sandbox = sandbox  # what the instance sandbox does here, in one line
        self.started = time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await send_json(send, 413, {"message": f"the body is over {MAX_BODY} bytes"})
            return
        parts = path[len(CONTROL_PREFIX) :].strip("/").split("/")
        if parts == ["health"]:
            if method not in ("GET", "HEAD"):
                await send_json(send, 405, {"message": f"{path} answers GET, not {method}"})
                return
            await send_json(send, 200, {"status": "ok"})
            return
        if parts == ["status"]:
            if method != "GET":
                await send_json(send, 405, {"message": f"{path} answers GET, not {method}"})
                return
            await send_json(send, 200, self.status())
            return
        if len(parts) == 3 and parts[0] == "functions" and parts[2] == "scaling":
            if method != "PUT":
                await send_json(send, 405, {"message": f"{path} answers PUT, not {method}"})
                return
            status, answer = self.scale(parts[1], body)
            await send_json(send, status, answer)
            return
        await send_json(
            send,
            404,
            {
                "message": f"no control API at {path}: use GET {CONTROL_PREFIX}health, "
                f"GET {CONTROL_PREFIX}status or "
                f"PUT {CONTROL_PREFIX}functions/NAME/scaling"
            },
        )

    def status(self) -> dict[str, Any]:
        functions = {}
        for name, pool in self.pools.items():
            scaler = self.autoscaler.scalers[name]
            entry: dict[str, Any] = pool.status()
            entry["mode"] = "panic" if scaler.panicking_since is not None else "stable"
            entry["decisions"] = [d.to_dict() for d in list(scaler.decisions)[-RECENT_DECISIONS:]]
            # Its HTTP routes, so a client can reach it by name (`skylift load FUNCTION`).
            entry["routes"] = [
                {"path": route.path, "methods": list(route.methods)} for route in pool.spec.routes
            ]
            functions[name] = entry
        return {
            "uptime": round(time.time() - self.started, 3),
            "autoscaling": self.autoscaler.policy is not None,
            "concurrency": {
                "limit": self.budget.limit,
                "running": self.budget.running,
                "throttles": self.budget.throttles,
            },
            "functions": functions,
            "sandbox": self.sandbox,
        }

    def scale(self, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        pool = self.pools.get(name)
        if pool is None:
            known = ", ".join(sorted(self.pools)) or "none"
            return 404, {"message": f"function {name!r} is not served here (functions: {known})"}
        try:
            request = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            return 400, {"message": f"the body is not JSON ({exc}): send {{'min': N, 'max': M}}"}
        if (
            not isinstance(request, dict)
            or not request
            or set(request) - {"min", "max"}
            or None in request.values()
        ):
            return 400, {
                "message": 'send a JSON object with "min" and/or "max" (whole numbers), '
                f"got {body[:200].decode('utf-8', 'replace')}"
            }
        minimum = request.get("min")
        others = sum(p.minimum for n, p in self.pools.items() if n != name)
        # (A minimum over the limit by itself is set_limits' to refuse, in its words.)
        if isinstance(minimum, int) and others + minimum > self.budget.limit >= minimum:
            return 400, {
                "message": f"{name}: min {minimum} would keep {others + minimum} instances warm "
                f"in all, over the server's --concurrency {self.budget.limit}; lower it (at "
                f"most {max(self.budget.limit - others, 0)}) or start the server with more"
            }
        try:
            pool.set_limits(request.get("min"), request.get("max"))
        except ValueError as exc:
            return 400, {"message": f"{name}: {exc}"}
        return 200, {"function": name, **pool.status()}
