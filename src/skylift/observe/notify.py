"""Telling people: the log, a JSON webhook, a Slack-compatible webhook.

Every alert event is logged (`skylift.alerts`, in the server's log). Webhooks are POSTed
off the event loop, retried with exponential backoff (`retries`, `retry_backoff` in the
policy) on a connection error or a 5xx/429 answer, and every attempt is recorded with
the alert (`skylift alerts --json` shows them), so "was Alice paged?" has an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from skylift.observe.alerts_store import Alert, AlertStore, Delivery
from skylift.observe.policy import Contact

logger = logging.getLogger("skylift.alerts")
TIMEOUT = 5.0  # seconds per attempt: a slow receiver must not hold the others
UNITS = {"duration_p99": "s", "error_rate": "", "throttles": "/s", "queue_age": "s"}


def summary(event: str, alert: Alert) -> str:
    """One line a person reads on a phone: what, how far off, and how to ack."""
    unit = UNITS.get(alert.metric, "")
    head = {"page": "PAGE", "escalate": "PAGE (escalated)", "notify": "NOTICE"}.get(
        event, event.upper()
    )
    what = f"alert {alert.id}: {alert.kind} {alert.subject} {alert.metric}"
    if event == "resolve":
        return f"[RESOLVED] {what}, by {alert.resolved_by}"
    if event == "ack":
        return f"[ACKED] {what}, by {alert.acked_by}: escalation stopped"
    if alert.kind == "backup":
        times = f" ({alert.value:.0f} in a row)" if alert.value > 1 else ""
        return (
            f"[{head}] alert {alert.id}: the scheduled backup into {alert.subject} failed"
            f"{times}: {alert.detail}; ack with `skylift alerts ack {alert.id}`"
        )
    return (
        f"[{head}] alert {alert.id}: {alert.kind} {alert.subject} {alert.metric} is "
        f"{alert.value:.4g}{unit}, {alert.sigma:.1f} sigma above its mean {alert.mean:.4g}{unit} "
        f"(sd {alert.stddev:.3g}); ack with `skylift alerts ack {alert.id}`"
    )


def webhook_payload(event: str, alert: Alert, recipient: str) -> dict[str, Any]:
    return {
        "event": event,
        "recipient": recipient,
        "summary": summary(event, alert),
        "alert": alert.to_dict(),
    }


def slack_payload(event: str, alert: Alert) -> dict[str, Any]:
    """An incoming-webhook message (Slack, Mattermost, Rocket.Chat all take `text`)."""
    return {"text": summary(event, alert), "username": "skylift"}


class Dispatcher:
    """Sends an alert event to contacts; deliveries run as tasks and are recorded."""

    def __init__(self, store: AlertStore, *, retries: int, backoff: float) -> None:
        self.store = store
        self.retries = retries
        self.backoff = backoff
        self.pending: set[asyncio.Task[None]] = set()

    def send(self, event: str, alert: Alert, contacts: Sequence[Contact]) -> None:
        line = summary(event, alert)
        names = ", ".join(c.name for c in contacts) or "nobody"
        if event in ("page", "escalate"):
            logger.error("%s -> %s", line, names)
        else:
            logger.warning("%s -> %s", line, names)
        for contact in contacts:
            if contact.webhook:
                body = webhook_payload(event, alert, contact.name)
                self._start(event, alert.id, contact.name, "webhook", contact.webhook, body)
            if contact.slack:
                body = slack_payload(event, alert)
                self._start(event, alert.id, contact.name, "slack", contact.slack, body)

    def _start(
        self,
        event: str,
        alert_id: int,
        recipient: str,
        notifier: str,
        url: str,
        body: dict[str, Any],
    ) -> None:
        task = asyncio.ensure_future(self._deliver(event, alert_id, recipient, notifier, url, body))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _deliver(
        self,
        event: str,
        alert_id: int,
        recipient: str,
        notifier: str,
        url: str,
        body: dict[str, Any],
    ) -> None:
        data = json.dumps(body).encode()
        wait = self.backoff
        for attempt in range(1, self.retries + 2):
            status, error = await asyncio.to_thread(post, url, data)
            self.store.record(
                Delivery(
                    alert_id, event, recipient, notifier, url, attempt, time.time(), status, error
                )
            )
            if error is None:
                return
            retryable = status is None or status >= 500 or status == 429
            if not retryable or attempt > self.retries:
                logger.warning(
                    "alert %s: %s to %s (%s) failed after %d attempt(s): %s",
                    alert_id,
                    event,
                    recipient,
                    url,
                    attempt,
                    error,
                )
                return
            await asyncio.sleep(wait)
            wait *= 2

    async def close(self, timeout: float = 5.0) -> None:
        """Let deliveries under way finish (a page during shutdown still goes out)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)
        for task in list(self.pending):
            task.cancel()


def post(url: str, data: bytes) -> tuple[int | None, str | None]:
    """POST JSON: (status, None) when delivered (2xx), else (status or None, why)."""
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "skylift-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            answer.read()
            return int(answer.status), None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"cannot reach it: {reason}"
