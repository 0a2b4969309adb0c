"""Instances of a function whose TenancyConfig is PER_TENANT: each serves one tenant
only, as Lambda keeps tenants' execution environments apart."""

from __future__ import annotations

from typing import Protocol

from skylift.engine.driver import FunctionInstance as Instance
from skylift.errors import RESERVED_LIMIT, Throttled
from skylift.spec import FunctionSpec


class Pool(Protocol):
    """What this module uses of `skylift.engine.pool.Pool` (which imports it)."""

    spec: FunctionSpec
    size: int
    limit: int
    throttles: int
    cold_starts: int
    _idle: list[Instance]

    def _discard(self, instance: Instance) -> None: ...
    def _took(self) -> None: ...
    async def _start(self) -> Instance: ...


async def tenant_instance(pool: Pool, tenant: str) -> Instance:
    """An idle instance of `tenant` (or one that never served anyone), else a new one;
    at the limit, the least recently used idle instance of another tenant makes room.
    Invocations of a tenant never wait for another tenant's instance: past the limit
    with none idle, they are throttled."""
    for index in range(len(pool._idle) - 1, -1, -1):
        instance = pool._idle[index]
        if instance.tenant not in (tenant, None):
            continue
        del pool._idle[index]
        if not instance.alive:
            pool._discard(instance)
            continue
        instance.tenant = tenant
        pool._took()
        return instance
    if pool.size >= pool.limit and pool._idle:
        pool._discard(pool._idle.pop(0))
    if pool.size >= pool.limit:
        pool.throttles += 1
        raise Throttled(pool.spec.name, RESERVED_LIMIT, pool.limit)
    instance = await pool._start()
    instance.tenant = tenant
    pool.cold_starts += 1
    pool._took()
    return instance
