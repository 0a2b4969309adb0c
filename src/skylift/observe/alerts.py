"""The alert engine: detectors' judgements become alerts, pages and escalations.

Per series (a function's or a queue's metric) at most one alert is active. A level that
has held for the policy's `for` opens one, unless the series is cooling down after its
last alert ended:

- beyond `notify_at` (2 sigma): the channels are told; nobody is paged;
- beyond `page_at` (3 sigma): the primary is paged (and the channels told); a notice that
  grows to 3 sigma is raised to a page;
- a page still open (not acked) `escalate_after` later is sent to the backup, once;
- a sample back under `notify_at` resolves it, and everyone told hears so;
- a person acking or resolving it (`skylift alerts ack|resolve`, from any process) is
  told to everyone who heard of it; a resolution says "this is fixed or the new
  normal": the series' baseline starts afresh (after the cool-down, `min_samples` again).

`tick(now, samples)` is the whole interface: time comes from the caller, so tests
drive hours of policy in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from skylift.observe.alerts_actions import Actions
from skylift.observe.alerts_detector import Detector, Judgement, Level
from skylift.observe.alerts_store import OPEN, RESOLVED, Alert, AlertStore
from skylift.observe.policy import Contact, Policy

# (kind, subject, metric): ("function", "hello", "error_rate"), ("queue", "jobs", "queue_age")
Series = tuple[str, str, str]
Send = Callable[[str, Alert, Sequence[Contact]], None]
# How far back each tick looks again for people's acks and resolutions: another process
# takes its timestamp before it commits, so a change may land after the tick that its
# time belongs to was judged. What was told already is remembered, never told twice.
LOOKBACK = 60.0


class AlertEngine:
    def __init__(
        self, policy: Policy, store: AlertStore, send: Send, actions: Actions | None = None
    ) -> None:
        self.policy = policy
        self.store = store
        self.send = send
        self.actions = actions  # what alerts do by themselves (`scale`), if the policy says
        self.detectors: dict[Series, Detector] = {}
        # People's acks and resolutions are looked for since then (None: not yet
        # started; those made before this server started were told by the last one).
        self.checked: float | None = None
        self.started: float | None = None
        self.told: dict[tuple[int, str], float] = {}  # (alert id, state) -> when told

    def detector(self, series: Series) -> Detector:
        found = self.detectors.get(series)
        if found is None:
            policy = self.policy
            found = self.detectors[series] = Detector(
                window=policy.window_samples,
                min_samples=policy.min_samples,
                hold=policy.hold,
                notify_at=policy.notify_at,
                page_at=policy.page_at,
                floor=policy.floors[series[2]],
            )
        return found

    def tick(self, now: float, samples: Mapping[Series, float]) -> None:
        """Judge one round of samples, then escalate what has waited too long."""
        if self.checked is not None and self.started is not None:
            self._people(max(self.started, self.checked - LOOKBACK), now)
        else:
            self.started = now
        self.checked = now
        active = {alert.series: alert for alert in self.store.active()}
        for series, value in samples.items():
            if series[2] not in self.policy.metrics:
                continue
            judgement = self.detector(series).observe(now, value)
            self._apply(now, series, judgement, active.get(series))
        self._escalate(now)

    def _apply(self, now: float, series: Series, judged: Judgement, alert: Alert | None) -> None:
        values = {
            "value": judged.value,
            "mean": judged.mean,
            "stddev": judged.stddev,
            "sigma": judged.sigma,
        }
        if alert is None:
            if judged.firing is Level.NONE:
                return
            ended = self.store.last_resolved(*series)
            if ended is not None and now - ended < self.policy.cooldown:
                return  # the same trouble again so soon: the people on it know
            alert = self.store.open_alert(*series, "notify", values, now)
            if judged.firing is Level.PAGE:
                self._page(alert, now)
            else:
                self.send("notify", alert, self.policy.channels)
            if self.actions is not None:
                self.actions.take(alert, judged.firing, now)
            return
        if judged.level is Level.NONE:
            resolved = self.store.resolve(alert.id, "skylift: back within the threshold", now)
            if resolved is not None:
                self.send("resolve", resolved, self._told(resolved))
            return
        self.store.update(alert.id, values)
        if judged.firing is Level.PAGE and alert.paged_at is None:
            refreshed = self.store.get(alert.id)
            if refreshed is not None:
                self._page(refreshed, now)
                if self.actions is not None:
                    self.actions.take(refreshed, Level.PAGE, now)

    def _people(self, since: float, until: float) -> None:
        """Tell everyone told of an alert that someone acked or resolved it; a series
        someone resolved starts its baseline afresh."""
        told = self.told
        for key, when in list(told.items()):
            if when < since:
                del told[key]  # out of the window: never looked at again
        for alert in self.store.changed_by_people(since, until):
            key = (alert.id, alert.state)
            if key in told:
                continue
            told[key] = until
            if alert.state == RESOLVED:
                self.detectors.pop(alert.series, None)
                self.send("resolve", alert, self._told(alert))
            else:
                self.send("ack", alert, self._told(alert))

    def _page(self, alert: Alert, now: float) -> None:
        primary = self.policy.primary
        if not self.store.page(alert.id, primary.name if primary else "", now):
            return  # acked or resolved meanwhile
        paged = self.store.get(alert.id)
        assert paged is not None
        self.send("page", paged, [*([primary] if primary else []), *self.policy.channels])

    def _escalate(self, now: float) -> None:
        backup = self.policy.backup
        for alert in self.store.active():
            if (
                alert.state != OPEN
                or alert.paged_at is None
                or alert.escalated_at is not None
                or now - alert.paged_at < self.policy.escalate_after
            ):
                continue
            # The UPDATE checks the alert is still unacked: an ack from the CLI between
            # the read above and here wins.
            if self.store.escalate(alert.id, backup.name if backup else "", now):
                escalated = self.store.get(alert.id)
                assert escalated is not None
                self.send(
                    "escalate", escalated, [*([backup] if backup else []), *self.policy.channels]
                )

    def _told(self, alert: Alert) -> list[Contact]:
        """Everyone who heard of the alert: the channels, and whoever was paged."""
        told = list(self.policy.channels)
        if alert.paged_at is not None and self.policy.primary is not None:
            told.append(self.policy.primary)
        if alert.escalated_at is not None and self.policy.backup is not None:
            told.append(self.policy.backup)
        return told
