"""What `skylift up` attaches to a platform to observe it: stored logs (with each
invocation's event and result), metrics, and the events `skylift describe` lists.

The server makes one `Observability` after loading the platform, adds its `services` to
the gateway's, wraps the gateway with `wrap`, and closes it last (pending logs are
written then). One observer (the `Intake`'s collector) takes every result; metrics, error
rates, events and stored logs get them in batches, off the request path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from skylift.asgi_types import Asgi
from skylift.engine.platform import Platform
from skylift.observe.emf import EmbeddedMetrics
from skylift.observe.events import EventLog, InvocationEvents
from skylift.observe.events_api import EventsApi
from skylift.observe.intake import Batch, Intake
from skylift.observe.logs_api import LogsApi
from skylift.observe.logs_store import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, LogStore, Retention
from skylift.observe.metrics import Metrics
from skylift.observe.metrics_http import HttpMetrics, MetricsEndpoint
from skylift.observe.outcomes import Outcomes
from skylift.sources.http import Router

logger = logging.getLogger("skylift.logs")
# Service names `gateway.routing.aws_service` gives the two metrics paths.
METRICS = "metrics"  # /_skylift/metrics, always skylift's
METRICS_ROOT = "metrics_root"  # /metrics, skylift's unless the app has a route there


def logs_stored(environ: Mapping[str, str]) -> bool:
    """Whether invocation logs are stored (all but SKYLIFT_LOGS=off, 0 or false)."""
    return environ.get("SKYLIFT_LOGS", "").lower() not in ("off", "0", "false")


def retention_from(environ: Mapping[str, str]) -> Retention:
    """SKYLIFT_LOG_MAX_MB (per function) and SKYLIFT_LOG_RETENTION_DAYS, if set.

    A value that is not a positive number is reported and its default used: a typo in
    a setting must not stop the server.
    """
    max_bytes, max_age = DEFAULT_MAX_BYTES, DEFAULT_MAX_AGE
    for name, scale in (("SKYLIFT_LOG_MAX_MB", 1024 * 1024), ("SKYLIFT_LOG_RETENTION_DAYS", 86400)):
        text = environ.get(name)
        if not text:
            continue
        try:
            value = float(text)
            if not value > 0:
                raise ValueError
        except ValueError:
            logger.warning("%s=%r is not a positive number: using the default", name, text)
            continue
        if scale == 86400:
            max_age = value * scale
        else:
            max_bytes = int(value * scale)
    return Retention(max_bytes=max_bytes, max_age=max_age)


class Observability:
    def __init__(
        self, platform: Platform, retention: Retention | None = None, *, store_logs: bool = True
    ) -> None:
        self.platform = platform
        self.logs = LogStore(platform.state_dir, retention) if store_logs else None
        self.metrics = Metrics(platform.pools)
        self.embedded = EmbeddedMetrics()
        self.metrics.more.append(self.embedded)
        self.endpoint: MetricsEndpoint | None = None  # made by `services`
        self.events = EventLog(platform.state_dir, platform.specs)
        self.outcomes = Outcomes()
        consumers: list[Batch] = [
            self.metrics.count,
            self.outcomes.count,
            InvocationEvents(self.events).count,
            self.embedded.count,
        ]
        if self.logs is not None:
            self.logs.start()
        tallied = [self.metrics.count_tallies, self.outcomes.count_tallies]
        self.intake = Intake(consumers, tallied, self.logs)
        platform.invoker.observers.append(self.intake.collector)
        # Whoever reads the counts first takes in what is pending.
        self.metrics.sync = self.outcomes.sync = self.events.sync = self.intake.drain
        platform.invoker.record = platform.autoscaler.record = self.events.record
        self.events.start()

    @classmethod
    def from_environment(cls, platform: Platform) -> Observability:
        """Settings from SKYLIFT_LOG_MAX_MB, SKYLIFT_LOG_RETENTION_DAYS, SKYLIFT_LOGS=off."""
        return cls(platform, retention_from(os.environ), store_logs=logs_stored(os.environ))

    def services(self, router: Router) -> dict[str, Asgi]:
        """The scrape endpoint, at `/metrics` too unless an app's route answers there."""
        endpoint = self.endpoint = MetricsEndpoint(self.metrics, self.platform.state)
        found: dict[str, Asgi] = {METRICS: endpoint}
        if router.match("GET", "/metrics") is None:
            found[METRICS_ROOT] = endpoint
        return found

    def control(self, control: Asgi) -> Asgi:
        """The control API with events, descriptions, past invocations and stored logs
        in front."""
        events = EventsApi(self.platform, self.events, self.outcomes, control)
        return LogsApi(self.platform.state_dir, self.platform.specs, events)

    def wrap(self, app: Asgi) -> Asgi:
        return HttpMetrics(app, self.metrics)

    def close(self) -> None:
        self.intake.drain()
        if self.logs is not None:
            self.logs.close()
        self.events.close()
