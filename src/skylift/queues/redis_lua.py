"""The Lua every Redis queue script shares: keys, the server clock, and the index upkeep.

Layout under a prefix ``P`` (one Redis database may hold several skylift states):

- ``P:queues`` hash: queue name -> queue id; ``P:queue_seq`` and ``P:message_seq``: id
  counters (never reused, so a stale receipt handle never matches a new message).
- ``P:q:ID:meta`` hash: ``name``, ``attrs`` (JSON), ``fifo``, ``created``, ``modified``,
  ``ver`` (bumped by every attribute change, so nodes notice each other's), ``seq`` (last
  FIFO sequence number), ``purged`` (ms), ``holds`` (a message was moved in: a DLQ).
- ``P:q:ID:msgs`` sorted set: every message of the queue, scored by ``visible_at`` (ms).
  A claim is ``ZRANGEBYSCORE msgs -inf now``; visible and not-visible counts are ZCOUNTs.
- ``P:q:ID:age`` sorted set scored by enqueue time (retention sweeps, oldest age);
  ``P:q:ID:delayed`` scored by ``visible_at``, the never-received messages sent with a
  delay (to tell delayed from in flight).
- FIFO: ``P:q:ID:g:GROUP`` sorted set of the group's messages by sequence number;
  ``P:q:ID:ready`` holds groups whose first message is visible, scored by its sequence
  number (so groups are served oldest first); ``P:q:ID:waiting`` the others, scored by
  when their first message becomes visible. Every change to a group's first message
  calls ``place_group``, so each group with messages is in exactly one of the two.
- ``P:q:ID:dedup`` hash (deduplication id -> "message id sequence") with
  ``P:q:ID:dedup_exp`` (expiry, ms); ``P:q:ID:tags`` hash; ``P:q:ID:wake`` list (below).
- ``P:m:ROW`` hash: one message (``q``, ``mid``, ``b`` body, ``md5``, ``a`` attributes,
  ``ma``, ``sent``, ``enq``, ``rc`` receive count, ``frat``/``rat`` first/latest receive,
  ``rcpt`` latest receipt token, ``g``, ``d``, ``seq``, ``src`` source queue id, ``sys``).

Time is the Redis server's (``TIME``), so nodes with skewed clocks agree on visibility.

Long polling: every message made visible pushes one token onto ``wake``; a waiting
receiver ``BLPOP``s it, and Redis hands each token to exactly one blocked client, so one
message wakes one receiver on any node (no herd). A claim drops as many tokens as it
delivered, and all of them when it found nothing, so stale tokens do not pile up.
"""

from __future__ import annotations

WAKE_CAP = 64  # tokens kept at most per queue: more waiters than this poll instead

PRELUDE = f"""
local P = ARGV[1]
local WAKE_CAP = {WAKE_CAP}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function qkey(q, part) return P .. 'q:' .. q .. ':' .. part end
local function mkey(row) return P .. 'm:' .. row end
local function gkey(q, group) return P .. 'q:' .. q .. ':g:' .. group end
local function is_fifo(q) return redis.call('HGET', qkey(q, 'meta'), 'fifo') == '1' end

-- Refuse a call made with outdated settings: the caller reloads them and tries again.
local function check(q, ver)
  local current = redis.call('HGET', qkey(q, 'meta'), 'ver')
  if not current then return 'gone' end
  if current ~= ver then return 'stale' end
  return nil
end

local function wake(q, n)
  if n <= 0 then return end
  local key = qkey(q, 'wake')
  for _ = 1, math.min(n, WAKE_CAP) do redis.call('LPUSH', key, '1') end
  redis.call('LTRIM', key, 0, WAKE_CAP - 1)
end

-- Put a FIFO group in 'ready' or 'waiting' by its first message, or drop it when empty.
local function place_group(q, group, now)
  local head = redis.call('ZRANGE', gkey(q, group), 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('ZREM', qkey(q, 'ready'), group)
    redis.call('ZREM', qkey(q, 'waiting'), group)
    return
  end
  local visible_at = tonumber(redis.call('ZSCORE', qkey(q, 'msgs'), head[1]))
  if visible_at <= now then
    redis.call('ZADD', qkey(q, 'ready'), head[2], group)
    redis.call('ZREM', qkey(q, 'waiting'), group)
  else
    redis.call('ZADD', qkey(q, 'waiting'), visible_at, group)
    redis.call('ZREM', qkey(q, 'ready'), group)
  end
end

-- Groups whose first message became visible since they were placed.
local function promote_groups(q, now)
  local due = redis.call('ZRANGEBYSCORE', qkey(q, 'waiting'), '-inf', now, 'LIMIT', 0, 1000)
  for _, group in ipairs(due) do place_group(q, group, now) end
end

local function set_visible_at(q, row, fifo, visible_at, now)
  redis.call('ZADD', qkey(q, 'msgs'), visible_at, row)
  if fifo then
    local group = redis.call('HGET', mkey(row), 'g')
    if group then place_group(q, group, now) end
  end
end

-- Take a message out of its queue's indexes (its hash stays).
local function detach(q, row, fifo, now)
  redis.call('ZREM', qkey(q, 'msgs'), row)
  redis.call('ZREM', qkey(q, 'age'), row)
  redis.call('ZREM', qkey(q, 'delayed'), row)
  if fifo then
    local group = redis.call('HGET', mkey(row), 'g')
    if group then
      redis.call('ZREM', gkey(q, group), row)
      place_group(q, group, now)
    end
  end
end

-- Put a message (its hash already says queue q) into q's indexes, visible at now.
local function attach(q, row, fifo, enqueued_at, now)
  redis.call('ZADD', qkey(q, 'msgs'), now, row)
  redis.call('ZADD', qkey(q, 'age'), enqueued_at, row)
  if fifo then
    local m = mkey(row)
    local group = redis.call('HGET', m, 'g')
    if group then
      redis.call('ZADD', gkey(q, group), redis.call('HGET', m, 'seq'), row)
      place_group(q, group, now)
    end
  end
end

local function remove_message(q, row, fifo, now)
  detach(q, row, fifo, now)
  redis.call('DEL', mkey(row))
end

-- Drop messages past the retention period, a bounded number per call.
local function sweep(q, cutoff, fifo, now)
  local old = redis.call('ZRANGEBYSCORE', qkey(q, 'age'), '-inf', cutoff, 'LIMIT', 0, 100)
  for _, row in ipairs(old) do remove_message(q, row, fifo, now) end
end

-- Delete every message of a queue and its indexes; UNLINK frees memory off the main thread.
local function clear_messages(q)
  local key = qkey(q, 'msgs')
  while true do
    local rows = redis.call('ZRANGE', key, 0, 999)
    if #rows == 0 then break end
    local keys = {{}}
    for i, row in ipairs(rows) do keys[i] = mkey(row) end
    redis.call('UNLINK', unpack(keys))
    redis.call('ZREM', key, unpack(rows))
  end
  for _, set in ipairs({{'ready', 'waiting'}}) do
    for _, group in ipairs(redis.call('ZRANGE', qkey(q, set), 0, -1)) do
      redis.call('UNLINK', gkey(q, group))
    end
  end
  redis.call('UNLINK', qkey(q, 'age'), qkey(q, 'delayed'), qkey(q, 'ready'),
    qkey(q, 'waiting'), qkey(q, 'dedup'), qkey(q, 'dedup_exp'))
end
"""


def script(body: str) -> str:
    """A script's full source: the shared prelude, then its own body."""
    return PRELUDE + body
