"""The triggers that fire by themselves under `skylift up`: schedules, queue event
source mappings, and upload notifications."""

from __future__ import annotations

import asyncio
import functools

from skylift.cluster.schedules import LEASE_TTL, LeasedSchedules
from skylift.engine.invoker import Invoker
from skylift.engine.state import State
from skylift.sources.async_invocations import AsyncInvocations
from skylift.sources.queue_mapping import QueueMapping
from skylift.sources.scheduler import Scheduler, entries
from skylift.sources.uploads import UploadNotifier
from skylift.sources.uploads import targets as upload_targets
from skylift.spec import FunctionSpec
from skylift.triggers import QueueTrigger


class Sources:
    def __init__(
        self,
        specs: list[FunctionSpec],
        invoker: Invoker,
        state: State,
        *,
        fast_retries: bool = False,
        schedule_speed: float = 1.0,
        poll_queues: bool = True,
    ) -> None:
        region = state.region
        # False (`--no-queue-polling`): the mappings exist (the Lambda API lists them) but
        # poll nowhere here; other nodes sharing the state take the messages.
        self.poll_queues = poll_queues
        self._invoker, self._state = invoker, state
        self.mappings = [self._mapping(spec.name, t) for spec in specs for t in spec.queues]
        self.async_invocations = AsyncInvocations(
            {spec.name: spec for spec in specs},
            invoker,
            state.pending,
            state.queues,
            region=region,
            fast_retries=fast_retries,
        )
        # Schedules and uploads invoke asynchronously, as EventBridge and S3 do.
        enqueue = functools.partial(self.async_invocations.enqueue, trigger="schedule")
        self.schedule_speed = schedule_speed  # for schedules a reload changes, too
        schedules = entries(specs, region, schedule_speed)
        if state.node is None:
            self.scheduler = Scheduler(schedules, enqueue, region)
        else:  # several nodes: each tick fires on one, the holder of the schedule's lease
            ttl = LEASE_TTL / schedule_speed
            gate = LeasedSchedules(state.node, ttl)
            self.scheduler = Scheduler(schedules, enqueue, region, gate=gate, handover=3 * ttl)
        uploaded = functools.partial(self.async_invocations.enqueue, trigger="s3")
        self.notifier = UploadNotifier(specs, uploaded, state.objects, region)

    async def open(self) -> None:
        await self.async_invocations.open()

    def start(self) -> None:
        self.async_invocations.start()
        self.scheduler.start()
        if self.poll_queues:
            for mapping in self.mappings:
                mapping.start()

    def _mapping(self, function: str, trigger: QueueTrigger) -> QueueMapping:
        state = self._state
        return QueueMapping(
            function,
            trigger,
            state.queues,
            self._invoker,
            queue_arn=state.queue_arn(trigger.queue),
            region=state.region,
        )

    async def apply(self, specs: list[FunctionSpec]) -> None:
        """Fire for these functions' triggers from now on (a reload changed them): queue
        mappings of unchanged triggers keep running (paused ones stay paused), others stop
        or start; schedules restart when any changed (rates count from then on); upload
        notifications and asynchronous invocations follow at once."""
        wanted = [(spec.name, trigger) for spec in specs for trigger in spec.queues]
        keep = [m for m in self.mappings if (m.function, m.trigger) in wanted]
        gone = [m for m in self.mappings if m not in keep]
        await asyncio.gather(*(mapping.stop() for mapping in gone))
        have = {(m.function, m.trigger) for m in keep}
        new = [self._mapping(name, t) for name, t in wanted if (name, t) not in have]
        if self.poll_queues:
            for mapping in new:
                mapping.start()
        self.mappings[:] = keep + new  # in place: the Lambda API and drains hold it
        self.notifier.targets = upload_targets(specs)
        await self.async_invocations.apply({spec.name: spec for spec in specs})
        found = entries(specs, self._state.region, self.schedule_speed)
        scheduler = self.scheduler
        if [(e.function, e.trigger) for e in found] != [
            (e.function, e.trigger) for e in scheduler.entries
        ]:
            await scheduler.stop()
            scheduler.entries = found
            scheduler.start()

    async def stop(self) -> None:
        await asyncio.gather(
            self.scheduler.stop(),
            self.async_invocations.stop(),
            *(mapping.stop() for mapping in self.mappings),
        )
