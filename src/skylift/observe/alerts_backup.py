"""Failed scheduled backups raise alerts (`skylift backup --schedule`).

A backup whose write or test-restore fails opens a `page` alert (kind `backup`, subject
the backup folder, metric `failed`, the error as its `detail`) in the app's
`.skylift/alerts.db`, and pages the policy's primary and tells its channels through the
detectors' notifiers: the log, webhooks, Slack. `skylift alerts` lists it; a running
`skylift up` escalates it to the backup after `escalate_after` unless someone acks it.
Further failures update it (how many in a row, the last error) without paging again;
the next backup that passes resolves it, and everyone told hears so.

Without an alerting policy the alert is still recorded and logged; nobody is paged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from skylift.observe.alerts_store import Alert, AlertStore
from skylift.observe.notify import Dispatcher
from skylift.observe.policy import Contact, Policy

KIND, METRIC = "backup", "failed"
PASSED = "skylift: the next backup passed"


class BackupAlarm:
    def __init__(self, state_dir: Path, folder: Path, policy: Policy | None) -> None:
        self.state_dir = state_dir
        self.subject = str(folder)
        self.policy = policy or Policy()

    def failed(self, error: str, now: float | None = None) -> Alert:
        """Record a failure: a new alert paged, or the open one updated."""
        now = time.time() if now is None else now
        store = AlertStore(self.state_dir)
        try:
            open_now = self._active(store)
            if open_now is not None:
                store.note(open_now.id, open_now.value + 1, error)
                updated = store.get(open_now.id)
                assert updated is not None
                asyncio.run(self._send(store, "notify", updated, self.policy.channels))
                return updated
            values = {"value": 1.0, "mean": 0.0, "stddev": 0.0, "sigma": 0.0}
            alert = store.open_alert(KIND, self.subject, METRIC, "page", values, now, error)
            primary = self.policy.primary
            store.page(alert.id, primary.name if primary else "", now)
            paged = store.get(alert.id)
            assert paged is not None
            told = [*([primary] if primary else []), *self.policy.channels]
            asyncio.run(self._send(store, "page", paged, told))
            return paged
        finally:
            store.close()

    def passed(self, now: float | None = None) -> Alert | None:
        """A backup passed: resolve the open alert of this folder, if any."""
        store = AlertStore(self.state_dir)
        try:
            open_now = self._active(store)
            if open_now is None:
                return None
            resolved = store.resolve(open_now.id, PASSED, now)
            assert resolved is not None
            told = list(self.policy.channels)
            if resolved.paged_at is not None and self.policy.primary is not None:
                told.append(self.policy.primary)
            if resolved.escalated_at is not None and self.policy.backup is not None:
                told.append(self.policy.backup)
            asyncio.run(self._send(store, "resolve", resolved, told))
            return resolved
        finally:
            store.close()

    def _active(self, store: AlertStore) -> Alert | None:
        series = (KIND, self.subject, METRIC)
        return next((a for a in store.active() if a.series == series), None)

    async def _send(
        self, store: AlertStore, event: str, alert: Alert, contacts: Sequence[Contact]
    ) -> None:
        """Deliver, waiting for every attempt (this process may end right after)."""
        policy = self.policy
        dispatcher = Dispatcher(store, retries=policy.retries, backoff=policy.retry_backoff)
        dispatcher.send(event, alert, contacts)
        if dispatcher.pending:
            await asyncio.wait(set(dispatcher.pending))
