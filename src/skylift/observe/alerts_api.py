"""Alerts on the control API, for the dashboard and remote tools.

- `GET /_skylift/alerts`: `{"alerts": [...], "series": [...]}`: open alerts and those
  resolved in the last day, each with its deliveries; and, when a policy is in force,
  every watched series' baseline (`samples`, `mean`, `stddev` of its window);
- `POST /_skylift/alerts/{id}/ack` and `/resolve`, with an optional `{"by": "NAME"}`:
  the alert after the change;
- `POST /_skylift/alerts/{id}/undo`: restore what the alert's actions changed
  (`{"undone": [...]}`, each with a one-line `summary`). 404 for no such alert, 409
  when it is resolved already (or, for an ack, acked already), 400 for a body that is
  not that JSON.

It sits in front of the control API (same prefix, same guard) and passes every other
path on, so `api/control.py` needs no change.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from skylift.asgi_json import read_body, send_json
from skylift.asgi_types import Asgi, Receive, Scope, Send
from skylift.observe.alerts import AlertEngine
from skylift.observe.alerts_actions import taken
from skylift.observe.alerts_store import ACKED, OPEN, RESOLVED, AlertStore
from skylift.spec import CONTROL_PREFIX

PATH = CONTROL_PREFIX + "alerts"
RECENT = 86400.0
MAX_BODY = 4096


class AlertsApi:
    def __init__(self, state_dir: Path, control: Asgi, engine: AlertEngine | None = None) -> None:
        self.state_dir = state_dir
        self.control = control
        self.engine = engine
        self._store: AlertStore | None = None

    @property
    def store(self) -> AlertStore:
        if self._store is None:  # opened on first use: most servers never ask
            self._store = AlertStore(self.state_dir)
        return self._store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PATH or path.startswith(PATH + "/")):
            await self.control(scope, receive, send)
            return
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await send_json(send, 413, {"message": f"the body is over {MAX_BODY} bytes"})
            return
        status, answer = self.handle(scope["method"], path[len(PATH) :].strip("/"), body)
        await send_json(send, status, answer)

    def handle(self, method: str, rest: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if rest == "":
            if method != "GET":
                return 405, {"message": f"{PATH} answers GET, not {method}"}
            alerts = [
                {
                    **a.to_dict(),
                    "deliveries": [d.to_dict() for d in self.store.deliveries(a.id)],
                    "actions": [t.to_dict() for t in taken(self.store, a.id)],
                }
                for a in self.store.recent(time.time() - RECENT)
            ]
            return 200, {"alerts": alerts, "series": self.series()}
        parts = rest.split("/")
        if len(parts) == 2 and parts[1] == "undo" and parts[0].isdigit() and method == "POST":
            return self.undo(int(parts[0]))
        if len(parts) != 2 or parts[1] not in ("ack", "resolve") or not parts[0].isdigit():
            return 404, {
                "message": f"no alerts API at {PATH}/{rest}: use GET {PATH}, "
                f"POST {PATH}/ID/ack or POST {PATH}/ID/resolve"
            }
        if method != "POST":
            return 405, {"message": f"{PATH}/{rest} answers POST, not {method}"}
        try:
            request = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            request = None
        if (
            not isinstance(request, dict)
            or set(request) - {"by"}
            or not isinstance(request.get("by", ""), str)
        ):
            return 400, {"message": 'send nothing, or {"by": "NAME"} (who acts)'}
        by = request.get("by") or "the control API"
        alert_id, action = int(parts[0]), parts[1]
        alert = self.store.get(alert_id)
        if alert is None:
            return 404, {"message": f"there is no alert {alert_id}"}
        if alert.state == RESOLVED or (action == "ack" and alert.state == ACKED):
            return 409, {"message": f"alert {alert_id} is {alert.state} already", **alert.to_dict()}
        changed = (
            self.store.ack(alert_id, by) if action == "ack" else self.store.resolve(alert_id, by)
        )
        assert changed is not None
        if action == "ack" and changed.state == OPEN:  # pragma: no cover (a race lost)
            return 409, {"message": f"alert {alert_id} changed meanwhile", **changed.to_dict()}
        return 200, changed.to_dict()

    def undo(self, alert_id: int) -> tuple[int, dict[str, Any]]:
        if self.store.get(alert_id) is None:
            return 404, {"message": f"there is no alert {alert_id}"}
        actions = self.engine.actions if self.engine is not None else None
        if actions is None:
            return 409, {"message": "the policy takes no actions: there is nothing to undo"}
        try:
            undone = actions.undo(alert_id)
        except ValueError as exc:  # what changed since forbids it (limits, a later reload)
            return 409, {"message": f"cannot undo alert {alert_id}'s actions: {exc}"}
        return 200, {"undone": undone}

    def series(self) -> list[dict[str, Any]]:
        if self.engine is None:
            return []
        return [
            {
                "kind": kind,
                "subject": subject,
                "metric": metric,
                "samples": detector.stats.count,
                "mean": detector.stats.mean,
                "stddev": detector.stats.stddev,
            }
            for (kind, subject, metric), detector in sorted(self.engine.detectors.items())
        ]
