"""What `skylift up` runs for alerting: every `interval`, sample the metrics, judge them.

The samples are what the Prometheus export's recording rules compute from `/metrics`,
over one interval:

- `duration_p99`: the 99th percentile of the interval's durations, interpolated in
  the histogram's buckets as `histogram_quantile` does (no sample without invocations);
- `error_rate`: errors and timeouts over invocations that ran (no sample without any);
- `throttles`: throttled invocations per second;
- `queue_age`: the age of the queue's oldest message, in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from skylift.engine.platform import Platform
from skylift.engine.reload import Reloader
from skylift.loader import AppTarget, Target
from skylift.observe import policy as policies
from skylift.observe import policy_sam
from skylift.observe.alerts import AlertEngine, Series
from skylift.observe.alerts_actions import Actions, Handler
from skylift.observe.alerts_drain import DrainAction, Drains, unknown_queues
from skylift.observe.alerts_rollback import RollbackAction, Rollbacks
from skylift.observe.alerts_scale import Scaler
from skylift.observe.alerts_store import AlertStore
from skylift.observe.metrics import DURATION_BUCKETS, Metrics
from skylift.observe.notify import Dispatcher
from skylift.observe.policy import Policy, PolicyError
from skylift.queues.errors import QueueError
from skylift.queues.protocol import QueueBackend

logger = logging.getLogger("skylift.alerts")


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """Prometheus' `histogram_quantile` over per-bucket (not cumulative) counts, the last
    being +Inf: linear within the bucket holding the rank; the highest finite bound when
    the rank falls in +Inf."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            if index == len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index else 0.0
            return lower + (bounds[index] - lower) * (rank - below) / count
        below += count
    return bounds[-1]


@dataclass
class _Snapshot:
    at: float
    ran: int
    failed: int
    durations: list[int]
    throttles: int


class Sampler:
    """Turns the metrics' running totals into one interval's samples."""

    def __init__(self, metrics: Metrics, queues: QueueBackend | None) -> None:
        self.metrics = metrics
        self.queues = queues
        self.last: dict[str, _Snapshot] = {}

    async def sample(self, now: float) -> dict[Series, float]:
        samples: dict[Series, float] = {}
        self.metrics.sync()  # invocations not yet counted are this interval's too
        for name, counts in list(self.metrics.functions.items()):
            pool = self.metrics.pools.get(name)
            outcomes = counts.totals()
            snapshot = _Snapshot(
                now,
                sum(outcomes.values()),
                outcomes["error"] + outcomes["timeout"],
                list(counts.duration.counts),
                pool.throttles if pool is not None else 0,
            )
            before = self.last.get(name)
            self.last[name] = snapshot
            if before is None:
                continue
            ran = snapshot.ran - before.ran
            if ran > 0:
                samples[("function", name, "error_rate")] = (snapshot.failed - before.failed) / ran
                deltas = [a - b for a, b in zip(snapshot.durations, before.durations, strict=True)]
                p99 = quantile(0.99, DURATION_BUCKETS, deltas)
                if p99 is not None:
                    samples[("function", name, "duration_p99")] = p99
            elapsed = now - before.at
            if elapsed > 0:
                throttled = snapshot.throttles - before.throttles
                samples[("function", name, "throttles")] = throttled / elapsed
        if self.queues is not None:
            for queue in await self.queues.list_queues():
                try:
                    stats = await self.queues.stats(queue)
                except QueueError:  # deleted meanwhile
                    continue
                samples[("queue", queue, "queue_age")] = stats.oldest_age_seconds or 0.0
        return samples


def policy_for(target: Target) -> Policy | None:
    """The `[alerts]` policy in `skylift.toml` beside the app or template, or in the
    template's `Metadata.skylift.alerts`, if any.

    Raises PolicyError (with the line at fault) for a policy that cannot be used.
    """
    if isinstance(target, AppTarget):
        return policy_sam.for_app(Path(target.code_dir))
    return policy_sam.for_app(Path(target.path).parent, Path(target.path))


class Alerting:
    """The running detector: a task sampling every interval, and the deliveries."""

    def __init__(
        self,
        policy: Policy,
        metrics: Metrics,
        queues: QueueBackend | None,
        state_dir: Path,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.policy = policy
        self.store = AlertStore(state_dir)
        self.dispatcher = Dispatcher(
            self.store, retries=policy.retries, backoff=policy.retry_backoff
        )
        actions = None
        if policy.actions:
            actions = Actions(policy.actions, self.store, handlers or {}, policy.cooldown)
        self.engine = AlertEngine(policy, self.store, self.dispatcher.send, actions)
        self.sampler = Sampler(metrics, queues)
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def attach(
        cls,
        policy: Policy | None,
        metrics: Metrics,
        platform: Platform,
        reloader: Reloader | None = None,
    ) -> Alerting | None:
        """Start alerting on a started platform's metrics and queues; None without a policy.

        `reloader` (None under --no-reload) is what a `rollback` action switches back.
        """
        if policy is None:
            return None
        source = policy.source or platform.state_dir.parent / policies.FILE
        unknown = sorted({a.function for a in policy.actions} - set(platform.pools))
        if unknown:
            known = ", ".join(sorted(platform.pools)) or "none"
            raise PolicyError(
                source,
                None,
                f"[[alerts.actions]] names function {unknown[0]!r}, which the app does not "
                f"declare (functions: {known})",
            )
        mappings = platform.sources.mappings if platform.sources is not None else []
        for rule in policy.actions:
            if not isinstance(rule, DrainAction):
                continue
            consumed = sorted(m.trigger.queue for m in mappings if m.function == rule.function)
            missing = unknown_queues(rule, mappings)
            if missing or not consumed:
                raise PolicyError(
                    source,
                    None,
                    f"[[alerts.actions]] drains {', '.join(missing) or 'the queues'} of "
                    f"function {rule.function!r}, which consumes "
                    f"{', '.join(consumed) if consumed else 'no queue'}",
                )
        if any(isinstance(rule, RollbackAction) for rule in policy.actions):
            if reloader is None:
                logger.warning("alerting: rollback actions do nothing under --no-reload")
            else:
                reloader.keep_previous = True  # a reload keeps the version it replaces
        handlers: dict[str, Handler] = {
            "scale": Scaler(platform.pools),
            "rollback": Rollbacks(reloader),
            "drain": Drains(mappings),
        }
        state = platform.state
        alerting = cls(
            policy, metrics, state.queues if state else None, platform.state_dir, handlers
        )
        alerting.task = asyncio.ensure_future(alerting._run())
        return alerting

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                self.engine.tick(time.time(), await self.sampler.sample(time.time()))
            except Exception:  # a bad tick must not end alerting for good
                logger.exception("alerting: a round of detection failed")
            # Fixed-rate ticks: a slow round does not push every later one back.
            due = max(due + self.policy.interval, loop.time())
            await asyncio.sleep(due - loop.time())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await self.dispatcher.close()
        self.store.close()
