"""How many warm instances each function should have, decided ahead of demand.

Every tick (a quarter second: forking is cheap, so there is no reason to wait as long as
Kubernetes does) each function's observed concurrency, averaged over the tick by time,
goes into two windows, as in Knative's KPA:

- each window's average, through Kubernetes' HPA formula
  `desired = ceil(current * observed / target)` with HPA's 0.1 tolerance (no change while
  the ratio is within 10% of 1), is a recommendation; the target follows the higher of
  the two, so it rises with the panic window (2 s) and falls with the stable one (60 s):
  warm instances are cheap, cold starts are what the scaler is for;
- when the panic window asks for at least twice the warm target (Knative compares with
  ready pods; here instances start on demand, so the count keeps up with a burst by
  itself and the target is what falls behind), the scaler panics: it follows the panic
  window, never scales down, and calms down only after a whole stable window without
  another panic.

Scale-up per tick is capped (`max_scale_up_rate` times the last target, counting zero as
one); scale-down is slow: a recommendation is held for `scale_down_delay` seconds and
the target falls by at most half a tick. With no traffic for a whole window the target
reaches zero (or the function's minimum). The target is a floor: instances above it are
reaped after their idle time; requests never wait for the scaler, they start instances
on demand (or, for a function whose instances turn around faster than a start, wait for
a busy one: engine/scale_out.py). The tick measures that turnaround (busy seconds per
invocation over the last `TURNS` ticks) and the service time (the seconds the workers
report per invocation), and such an instance counts as `start / service` instances'
worth of capacity, so the queue it serves does not raise the target.

Decisions that change the target or the mode are recorded (`Scaler.decisions`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from skylift.engine import scale_out
from skylift.engine.pool import Pool
from skylift.engine.recording import Record, ignore

logger = logging.getLogger("skylift.autoscaler")
TICK = 0.25
HISTORY = 50  # decisions kept per function
TURNS = 8  # ticks (2 s) a function's turnaround is measured over


@dataclass(frozen=True)
class Policy:
    """The autoscaler's settings, shared by every function of a server."""

    target: float = 0.7  # concurrent invocations per instance to aim for (1 is full)
    tolerance: float = 0.1  # HPA: no change while observed/target is within 10% of 1
    stable_window: float = 60.0
    panic_window: float = 2.0
    panic_threshold: float = 2.0  # panic when the panic window wants >= 2x current
    max_scale_up_rate: float = 10.0  # per tick, at most this many times the last target
    max_scale_down_rate: float = 2.0  # per tick, at most current / this fewer
    scale_down_delay: float = 30.0  # hold the highest recommendation this long
    tick: float = TICK

    def __post_init__(self) -> None:
        checks = {
            "target": 0 < self.target <= 1,
            "tolerance": 0 <= self.tolerance < 1,
            "panic_window": 0 < self.panic_window <= self.stable_window,
            "panic_threshold": self.panic_threshold > 1,
            "max_scale_up_rate": self.max_scale_up_rate > 1,
            "max_scale_down_rate": self.max_scale_down_rate > 1,
            "scale_down_delay": self.scale_down_delay >= 0,
            "tick": 0 < self.tick <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"autoscaler {name} {getattr(self, name)!r} is out of range")


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Decision:
    """One change of a function's target, and why."""

    at: float  # wall-clock seconds
    current: int  # instances when deciding
    desired: int  # the new target
    stable: float  # average concurrency over the stable window
    panic: float  # ... and over the panic window
    mode: str  # "stable" or "panic"
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "current": self.current,
            "desired": self.desired,
            "stable_concurrency": round(self.stable, 3),
            "panic_concurrency": round(self.panic, 3),
            "mode": self.mode,
            "reason": self.reason,
        }


class Scaler:
    """The KPA/HPA decision for one function, fed one observation per tick."""

    def __init__(self, policy: Policy, now: float | None = None) -> None:
        self.policy = policy
        self.started = time.monotonic() if now is None else now
        self.desired = 0
        # Invocations one instance serves within the pool's scale-out wait: above 1 for
        # functions whose instances turn around faster than that (`Autoscaler.tick`).
        self.capacity = 1.0
        self.panicking_since: float | None = None
        self.decisions: collections.deque[Decision] = collections.deque(maxlen=HISTORY)
        self._stable = _Window(policy.stable_window)
        self._panic = _Window(policy.panic_window)
        self._recommended: collections.deque[tuple[float, int]] = collections.deque()

    def observe(self, now: float, concurrency: float, duration: float) -> None:
        """The average concurrency over the `duration` seconds that ended at `now`."""
        for window in (self._stable, self._panic):
            window.add(now, concurrency * duration)

    def average(self, now: float, window: _Window) -> float:
        """Time-weighted average concurrency over `window` (or since the scaler started,
        if that is shorter)."""
        span = min(window.length, now - self.started)
        return window.area(now) / span if span > 0 else 0.0

    def decide(self, now: float, current: int, floor: int, ceiling: int) -> Decision | None:
        """Set `desired` for a function with `current` instances and limits
        [`floor`, `ceiling`]; the decision if the target or the mode changed."""
        p = self.policy
        stable = self.average(now, self._stable)
        panic = self.average(now, self._panic)
        want_stable = self._hpa(current, stable)
        want_panic = self._hpa(current, panic)
        was_panicking = self.panicking_since is not None
        # Instances start on demand, so `current` keeps up with any burst by itself; what
        # a burst outruns is the warm target. Unrounded, so one instance at 80% is no panic.
        if panic / self._target() / max(self.desired, 1) >= p.panic_threshold:
            self.panicking_since = now  # (re)arm: panic lasts a stable window past this
        elif was_panicking and now - (self.panicking_since or now) >= p.stable_window:
            self.panicking_since = None
        panicking = self.panicking_since is not None
        if panicking:
            # Panic never scales down: follow the panic window up, hold otherwise.
            wanted = max(want_panic, self.desired)
            reason = f"{panic:.2f} concurrent over {p.panic_window:g} s"
        else:
            # Up on the faster window, down on the slower (held) one: warm instances are
            # cheap, and cold starts are what the scaler is for.
            wanted = self._held(now, max(want_stable, want_panic))
            if want_panic > want_stable:
                reason = f"{panic:.2f} concurrent over {p.panic_window:g} s"
            else:
                reason = f"{stable:.2f} concurrent over {p.stable_window:g} s"
        most = math.ceil(p.max_scale_up_rate * max(self.desired, 1))
        least = math.floor(self.desired / p.max_scale_down_rate)
        desired = min(max(wanted, least), most)
        if desired == most and wanted > most:
            reason += f"; scale-up capped at {p.max_scale_up_rate:g}x"
        desired = max(floor, min(ceiling, desired))
        changed = desired != self.desired or panicking != was_panicking
        self.desired = desired
        if not changed:
            return None
        decision = Decision(
            at=time.time(),
            current=current,
            desired=desired,
            stable=stable,
            panic=panic,
            mode="panic" if panicking else "stable",
            reason=reason,
        )
        self.decisions.append(decision)
        return decision

    def _target(self) -> float:
        return self.policy.target * self.capacity

    def _hpa(self, current: int, observed: float) -> int:
        """Kubernetes' HPA: ceil(current * observed-per-instance / target), within the
        tolerance of the current count no change."""
        if current == 0:
            return math.ceil(observed / self._target() - 1e-9)
        ratio = observed / current / self._target()
        if abs(ratio - 1) <= self.policy.tolerance:
            return current
        return math.ceil(current * ratio - 1e-9)

    def _held(self, now: float, recommended: int) -> int:
        """The highest recommendation of the last `scale_down_delay` seconds."""
        self._recommended.append((now, recommended))
        horizon = now - self.policy.scale_down_delay
        while self._recommended and self._recommended[0][0] < horizon:
            self._recommended.popleft()
        return max(r for _, r in self._recommended)


class _Window:
    """Busy-instance-seconds of the observations that ended within the last `length`
    seconds, kept as a running sum: a tick costs the same for any window."""

    def __init__(self, length: float) -> None:
        self.length = length
        self._areas: collections.deque[tuple[float, float]] = collections.deque()
        self._sum = 0.0

    def add(self, now: float, area: float) -> None:
        self._areas.append((now, area))
        self._sum += area

    def area(self, now: float) -> float:
        horizon = now - self.length
        while self._areas and self._areas[0][0] <= horizon:
            self._sum -= self._areas.popleft()[1]
        if not self._areas:
            self._sum = 0.0  # no drift from float rounding once the window empties
        return max(self._sum, 0.0)


class _Turns:
    """A function's recent turnaround: busy seconds per invocation over the last
    `TURNS` ticks (kept while it has no invocations and no busy instance), and its
    service time: the seconds its workers report per invocation (0 while none report).
    A tick with a cold start is left out: that invocation's time includes the
    instance's start, and counting it would make a burst look slow and start more
    instances still."""

    def __init__(self, pool: Pool) -> None:
        self._ticks: collections.deque[tuple[float, int, float]] = collections.deque(maxlen=TURNS)
        self._invocations = pool.invocations
        self._cold_starts = pool.cold_starts
        self._worked = scale_out.worked(pool)
        self.seconds = 0.0
        self.service = 0.0

    def add(self, area: float, pool: Pool) -> float:
        invocations, cold_starts, worked = (
            pool.invocations,
            pool.cold_starts,
            scale_out.worked(pool),
        )
        if invocations < self._invocations:  # another pool under the name: start afresh
            self._ticks.clear()
        elif cold_starts == self._cold_starts:
            work = max(worked - self._worked, 0.0)  # less: a reload's new instances
            self._ticks.append((area, invocations - self._invocations, work))
        self._invocations, self._cold_starts, self._worked = invocations, cold_starts, worked
        count = sum(n for _, n, _ in self._ticks)
        busy = sum(a for a, _, _ in self._ticks)
        if count or busy:  # busy without a new invocation: at least that long each
            self.seconds = busy / max(count, 1)
        if count:
            self.service = sum(w for _, _, w in self._ticks) / count
        return self.seconds


class Autoscaler:
    """Every tick: observe each pool, decide its target, warm it up to that, and reap
    what has idled past its time above it."""

    def __init__(self, pools: Mapping[str, Pool], policy: Policy | None) -> None:
        self.pools = pools
        self.policy = policy  # None: no autoscaling, only minimums and idle reaping
        self.prewarm = False  # only a serving platform keeps instances warm
        self.record: Record = ignore  # decisions are events `skylift describe` lists
        now = time.monotonic()
        self.scalers = {name: Scaler(policy or Policy(), now) for name in pools}
        self._area = {name: pool.sample() for name, pool in pools.items()}
        self._turns = {name: _Turns(pool) for name, pool in pools.items()}
        self._at = now

    @property
    def tick_seconds(self) -> float:
        return self.policy.tick if self.policy else TICK

    def tick(self) -> None:
        now = time.monotonic()
        elapsed = now - self._at
        self._at = now
        for name, pool in self.pools.items():
            area = pool.sample()
            # A function a reload added starts from here; one it removed is forgotten.
            concurrency = (area - self._area.get(name, area)) / elapsed if elapsed > 0 else 0.0
            turns = self._turns.setdefault(name, _Turns(pool))
            pool.turnaround = turns.add(concurrency * elapsed, pool)
            pool.service = turns.service
            self._area[name] = area
            if self.policy is not None:
                scaler = self.scalers.setdefault(name, Scaler(self.policy, now))
                if scale_out.service(pool) > 0:
                    took = scale_out.service(pool)
                    scaler.capacity = max(1.0, scale_out.wait_limit(pool) / took)
                scaler.observe(now, concurrency, elapsed)
                decision = scaler.decide(now, pool.size, pool.minimum, pool.limit)
                if decision is not None:
                    self.record(
                        name,
                        "Scaled",
                        f"target {decision.desired} instance{'' if decision.desired == 1 else 's'} "
                        f"({decision.current} running; "
                        f"{decision.mode}: {decision.reason})",
                    )
                    logger.debug(
                        "%s: %d -> %d instances (%s: %s)",
                        name,
                        decision.current,
                        decision.desired,
                        decision.mode,
                        decision.reason,
                    )
                pool.target = scaler.desired
            if self.prewarm:
                pool.prewarm()
            pool.reap(now)
        for name in [n for n in self._area if n not in self.pools]:
            del self._area[name]
            self._turns.pop(name, None)
            self.scalers.pop(name, None)

    async def run(self) -> None:
        """Tick until cancelled; one failure never stops the scaling of the rest."""
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self.tick()
            except Exception:
                logger.exception("autoscaler tick failed")
