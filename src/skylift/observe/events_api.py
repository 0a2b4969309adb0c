"""Events, descriptions and past invocations on the control API.

- `GET /_skylift/status`: the control API's status, each function with its triggers,
  its recent error rate and last error added (`skylift status`);
- `GET /_skylift/functions/{name}`: `{"function", "configuration", "status", "events"}`
  (`skylift describe`); `GET /_skylift/functions/{name}/events`: `{"events": [...]}`,
  oldest first;
- `GET /_skylift/invocations/{request id}`: what was kept of a past invocation, its
  event and result (`skylift replay`); 404 when no stored log has it;
- `POST /_skylift/invocations/{request id}/replay`, optionally `{"function": NAME}`:
  run its event again now, `{"requestId", "function", "before", "after"}` (for the
  dashboard); 409 when its event was kept as a digest only, 429 when throttled.

It sits in front of the control API (same prefix, same guard) and passes every other
path on, as `alerts_api.py` does.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import orjson

from skylift.asgi_json import read_body, send_json
from skylift.asgi_types import Asgi, Message, Receive, Scope, Send
from skylift.engine.platform import Platform
from skylift.errors import Throttled
from skylift.observe import history
from skylift.observe.events import EventLog
from skylift.observe.outcomes import Outcomes
from skylift.spec import CONTROL_PREFIX, FunctionSpec

FUNCTIONS = CONTROL_PREFIX + "functions/"
INVOCATIONS = CONTROL_PREFIX + "invocations/"
STATUS = CONTROL_PREFIX + "status"
REPLAY = "/replay"
MAX_BODY = 4096


class EventsApi:
    def __init__(self, platform: Platform, log: EventLog, outcomes: Outcomes, control: Asgi):
        self.platform = platform
        self.log = log
        self.outcomes = outcomes
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http":
            await self.control(scope, receive, send)
            return
        if scope["method"] == "POST" and path.startswith(INVOCATIONS) and path.endswith(REPLAY):
            request_id = urllib.parse.unquote(path[len(INVOCATIONS) : -len(REPLAY)])
            await send_json(
                send, *await self.replay(request_id, await read_body(receive, MAX_BODY))
            )
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self.control(scope, receive, send)
            return
        if path == STATUS:
            await self._status(scope, receive, send)
            return
        answer: tuple[int, dict[str, Any]] | None = None
        if path.startswith(INVOCATIONS):
            request_id = urllib.parse.unquote(path[len(INVOCATIONS) :].strip("/"))
            answer = await asyncio.to_thread(self.invocation, request_id)
        elif path.startswith(FUNCTIONS):
            parts = path[len(FUNCTIONS) :].strip("/").split("/")
            if len(parts) == 1:
                answer = self.describe(parts[0])
            elif len(parts) == 2 and parts[1] == "events":
                answer = self.events(parts[0])
        if answer is None:
            await self.control(scope, receive, send)
            return
        await send_json(send, *answer)

    def _unknown(self, name: str) -> tuple[int, dict[str, Any]]:
        known = ", ".join(sorted(self.platform.specs)) or "none"
        return 404, {"message": f"function {name!r} is not served here (functions: {known})"}

    def describe(self, name: str) -> tuple[int, dict[str, Any]]:
        spec = self.platform.specs.get(name)
        pool = self.platform.pools.get(name)
        if spec is None or pool is None:
            return self._unknown(name)
        return 200, {
            "function": name,
            "configuration": configuration(spec),
            "status": {**pool.status(), **self.outcomes.summary(name)},
            "events": [e.to_dict() for e in self.log.events(name)],
        }

    def events(self, name: str) -> tuple[int, dict[str, Any]]:
        if name not in self.platform.specs:
            return self._unknown(name)
        return 200, {"function": name, "events": [e.to_dict() for e in self.log.events(name)]}

    def invocation(self, request_id: str) -> tuple[int, dict[str, Any]]:
        found = history.find(self.platform.state_dir, request_id)
        if found is None:
            return 404, {
                "message": f"no stored invocation has request id {request_id!r}: it is "
                "unknown, or older than the logs' retention (see `skylift logs`)"
            }
        return 200, found.to_dict()

    async def replay(self, request_id: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        try:
            request = orjson.loads(body or b"{}") if body is not None else None
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict) or set(request) - {"function"}:
            return 400, {"message": 'send nothing, or {"function": NAME} to run it on another'}
        status, kept = await asyncio.to_thread(self.invocation, request_id)
        if status != 200:
            return status, kept
        found = history.Invocation.from_dict(kept)
        reason = found.unreplayable()
        if reason is not None:
            return 409, {"message": f"cannot replay {request_id}: {reason}"}
        assert found.event is not None
        function = str(request.get("function") or found.function)
        if function not in self.platform.pools:
            return self._unknown(function)
        try:
            result = await self.platform.invoker.invoke(
                function, found.event.encode(), trigger="replay"
            )
        except Throttled as exc:
            return 429, {"message": str(exc)}
        before = history.side(found.result, found.error, found.result_digest)
        after = history.side(result.payload.decode("utf-8", "replace"), result.error is not None)
        return 200, {
            "requestId": result.request_id,
            "function": function,
            "before": before,
            "after": after,
        }

    async def _status(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent: list[Message] = []

        async def keep(message: Message) -> None:
            sent.append(message)

        await self.control(scope, receive, keep)
        start = sent[0] if sent else {}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        if start.get("status") != 200:
            for message in sent:
                await send(message)
            return
        status = orjson.loads(body)
        for name, entry in status.get("functions", {}).items():
            spec = self.platform.specs.get(name)
            entry["triggers"] = triggers(spec) if spec is not None else []
            entry.update(self.outcomes.summary(name))
        await send_json(send, 200, status)


def triggers(spec: FunctionSpec) -> list[str]:
    """What invokes the function, in short: `GET /items/{id}`, `queue:orders`, ..."""
    found = [f"{' '.join(r.methods) if r.methods else 'ANY'} {r.path}" for r in spec.routes]
    found += [f"queue:{q.queue}" for q in spec.queues]
    found += [f"schedule:{s.expression}" for s in spec.schedules]
    found += [f"upload:{u.bucket}" for u in spec.uploads]
    return found


def configuration(spec: FunctionSpec) -> dict[str, Any]:
    """What `describe` shows of a function's configuration (environment: names only)."""
    return {
        "handler": spec.handler,
        "runtime": spec.runtime,
        "code": spec.code_dir,
        "timeout": spec.timeout,
        "memory": spec.memory,
        "reserved_concurrency": spec.max_concurrency,
        "min_instances": spec.min_instances,
        "spawn": spec.spawn,
        "log_format": spec.log_config.format,
        "environment": sorted(spec.environment),
        "triggers": triggers(spec),
    }
