"""Fenced leases in Redis: one holder at a time, and nothing done on a lost lease.

A lease is one key, ``P:lease:NAME``, holding ``NODE|TOKEN`` with an expiry (``SET NX
PX``). The token comes from ``P:lease:NAME:token``, a counter bumped by every new holder,
so each holding of the lease has its own token. The holder keeps it by renewing well
before the expiry; a holder that dies stops renewing, the key expires, and the next node
to try takes it with a new token.

An expiry alone cannot stop a holder that stalled (a long pause, a slow network) from
acting after its lease passed to another node. So every action under the lease is a
script that first checks the key still holds the caller's ``NODE|TOKEN`` (the fencing
token): a stale holder's action is refused in Redis, where the check and the action are
one atomic step.
"""

from __future__ import annotations

from redis.asyncio import Redis

# KEYS: lease, token counter. ARGV: node, token held (0: none), ttl ms.
# Returns the token now held by the caller, or 0 when another node holds the lease.
_KEEP = """
local held = redis.call('GET', KEYS[1])
if held then
  if held == ARGV[1] .. '|' .. ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return tonumber(ARGV[2])
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'NX', 'PX', ARGV[3])
return token
"""

# KEYS: lease. ARGV: node, token. Gives the lease up at once (a clean stop).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lease, the last mark. ARGV: node, token, mark. Sets the mark (a number that only
# grows, e.g. a schedule's tick) if the caller holds the lease and the mark is new.
# Returns 1 when set, 0 when the mark was already reached, -1 when the lease is not held.
_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '|' .. ARGV[2] then return -1 end
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""


class Lease:
    """One named lease, as seen by one node. Example::

    lease = Lease(redis, "skylift:lease:nightly", node="host-12-ab12cd", ttl=10.0)
    if await lease.keep():            # taken or renewed: this node holds it
        if await lease.advance("last", 1700000000000):
            ...                       # done once for that mark, by the holder only
    """

    def __init__(self, redis: Redis, key: str, *, node: str, ttl: float) -> None:
        self.key = key
        self.node = node
        self.ttl_ms = max(1, round(ttl * 1000))
        self.token = 0  # the token of this node's holding; 0 when it holds nothing
        self._redis = redis
        self._keep = redis.register_script(_KEEP)
        self._release = redis.register_script(_RELEASE)
        self._advance = redis.register_script(_ADVANCE)

    async def keep(self) -> bool:
        """Take the lease if it is free, renew it if held; True while this node holds it."""
        self.token = int(
            await self._keep(
                keys=[self.key, self.key + ":token"], args=[self.node, self.token, self.ttl_ms]
            )
        )
        return self.token != 0

    async def advance(self, mark_key: str, mark: int) -> bool:
        """Set ``mark_key`` to ``mark`` if it is below it, only while holding the lease."""
        if self.token == 0:
            return False
        answer = int(
            await self._advance(keys=[self.key, mark_key], args=[self.node, self.token, mark])
        )
        if answer < 0:
            self.token = 0  # lost: another node took it after our lease ran out
        return answer == 1

    async def release(self) -> None:
        if self.token:
            await self._release(keys=[self.key], args=[self.node, self.token])
            self.token = 0

    async def holder(self) -> str | None:
        """The node holding the lease now, or None."""
        value = await self._redis.get(self.key)
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.rsplit("|", 1)[0]
