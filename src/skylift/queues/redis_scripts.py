"""The Lua scripts behind RedisQueues' message operations, one atomic step each.

Every script takes ``ARGV[1]`` = key prefix, ``ARGV[2]`` = queue id and ``ARGV[3]`` = the
settings version the caller read, and answers ``{'gone'}`` (queue deleted) or
``{'stale'}`` (settings changed: reload and call again) before touching anything. Layout
and helpers: ``redis_lua.py``. Redis runs a script to its end before serving any other
command, so two nodes can never both claim one message inside its visibility window.
"""

from __future__ import annotations

from skylift.queues.redis_lua import script

# Fields of a message a claim returns, after its row id (redis_received.py reads them).
_RECEIVED = ("mid", "b", "md5", "a", "ma", "sent", "rc", "frat", "g", "d", "seq", "src", "sys")
_RECEIVED_FIELDS = ", ".join(f"'{name}'" for name in _RECEIVED)

# ARGV[4]: '1' when deduplication ids are scoped by message group; ARGV[5]: the count;
# then 9 values per message: id, body, md5, attributes, their md5, delay (ms), group,
# deduplication id, system attributes ('' for none). Answers {'ok', id, sequence, ...}.
SEND = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local meta = qkey(q, 'meta')
local fifo = is_fifo(q)
local by_group = ARGV[4] == '1'
local n = tonumber(ARGV[5])
local out = {'ok'}
local visible = 0
if fifo then
  local expired = redis.call('ZRANGEBYSCORE', qkey(q, 'dedup_exp'), '-inf', now, 'LIMIT', 0, 1000)
  for _, key in ipairs(expired) do
    redis.call('HDEL', qkey(q, 'dedup'), key)
    redis.call('ZREM', qkey(q, 'dedup_exp'), key)
  end
end
for i = 0, n - 1 do
  local b = 6 + i * 9
  local mid, group, dedup = ARGV[b], ARGV[b + 6], ARGV[b + 7]
  local seq = ''
  local duplicate = false
  if fifo then
    local key = dedup
    if by_group then key = group .. '\\0' .. dedup end
    local original = redis.call('HGET', qkey(q, 'dedup'), key)
    if original then
      duplicate = true
      local space = string.find(original, ' ', 1, true)
      mid, seq = string.sub(original, 1, space - 1), string.sub(original, space + 1)
    else
      seq = tostring(redis.call('HINCRBY', meta, 'seq', 1))
      redis.call('HSET', qkey(q, 'dedup'), key, mid .. ' ' .. seq)
      redis.call('ZADD', qkey(q, 'dedup_exp'), now + 300000, key)
    end
  end
  if not duplicate then
    local row = redis.call('INCR', P .. 'message_seq')
    local visible_at = now + tonumber(ARGV[b + 5])
    local fields = {'q', q, 'mid', mid, 'b', ARGV[b + 1], 'md5', ARGV[b + 2], 'sent', now,
      'enq', now, 'rc', 0}
    local optional = {a = ARGV[b + 3], ma = ARGV[b + 4], g = group, d = dedup, seq = seq,
      sys = ARGV[b + 8]}
    for name, value in pairs(optional) do
      if value ~= '' then
        table.insert(fields, name)
        table.insert(fields, value)
      end
    end
    redis.call('HSET', mkey(row), unpack(fields))
    redis.call('ZADD', qkey(q, 'msgs'), visible_at, row)
    redis.call('ZADD', qkey(q, 'age'), now, row)
    if visible_at > now then
      redis.call('ZADD', qkey(q, 'delayed'), visible_at, row)
    else
      visible = visible + 1
    end
    if fifo then
      redis.call('ZADD', gkey(q, group), seq, row)
      place_group(q, group, now)
    end
  end
  table.insert(out, mid)
  table.insert(out, seq)
end
wake(q, visible)
return out
"""
)

# ARGV[4]: how many; [5]: visibility timeout (ms); [6]: retention (ms); [7]: dead-letter
# queue name or ''; [8]: maxReceiveCount; [9]: the receipt token.
# Answers {'ok', now, next_visible_at or -1, (row, <_RECEIVED_FIELDS>)...}.
CLAIM = script(
    """
local function fifo_candidates(q, now, limit)
  local rows = {}
  for _, group in ipairs(redis.call('ZRANGE', qkey(q, 'ready'), 0, limit - 1)) do
    local members = redis.call('ZRANGE', gkey(q, group), 0, limit - #rows - 1)
    for i, row in ipairs(members) do
      if tonumber(redis.call('ZSCORE', qkey(q, 'msgs'), row)) > now then
        -- One in flight or delayed holds back the rest of its group.
        if i == 1 then place_group(q, group, now) end
        break
      end
      table.insert(rows, row)
    end
    if #rows >= limit then break end
  end
  return rows
end

local function move_to_dlq(q, dlq, row, fifo, now)
  detach(q, row, fifo, now)
  local m = mkey(row)
  local dlq_fifo = is_fifo(dlq)
  -- The receive that moved the message did not deliver it.
  redis.call('HINCRBY', m, 'rc', -1)
  redis.call('HDEL', m, 'rat', 'rcpt')
  redis.call('HSET', m, 'q', dlq, 'src', q)
  -- A standard queue keeps the original enqueue time (retention keeps counting); a
  -- FIFO queue restarts it and gives the message its own sequence number.
  local enqueued_at = redis.call('HGET', m, 'enq')
  if dlq_fifo then
    redis.call('HSET', m, 'seq', redis.call('HINCRBY', qkey(dlq, 'meta'), 'seq', 1), 'enq', now)
    enqueued_at = now
  end
  redis.call('HSET', qkey(dlq, 'meta'), 'holds', '1')
  attach(dlq, row, dlq_fifo, enqueued_at, now)
  wake(dlq, 1)
end

local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local fifo = is_fifo(q)
local want, vt = tonumber(ARGV[4]), tonumber(ARGV[5])
local cutoff = now - tonumber(ARGV[6])
-- By name, here: a dead-letter queue deleted and created again has a new id.
local dlq = ARGV[7] ~= '' and redis.call('HGET', P .. 'queues', ARGV[7])
if not dlq or dlq == q then dlq = nil end
local max_receives, token = tonumber(ARGV[8]), ARGV[9]
sweep(q, cutoff, fifo, now)
if fifo then promote_groups(q, now) end
local out = {'ok', now, -1}
local delivered = 0
while delivered < want do
  local rows
  if fifo then
    rows = fifo_candidates(q, now, want - delivered)
  else
    rows = redis.call('ZRANGEBYSCORE', qkey(q, 'msgs'), '-inf', now, 'LIMIT', 0, want - delivered)
  end
  if #rows == 0 then break end
  local dropped = false
  local groups = {}
  for _, row in ipairs(rows) do
    local m = mkey(row)
    local count = redis.call('HINCRBY', m, 'rc', 1)
    if tonumber(redis.call('HGET', m, 'enq')) <= cutoff then
      remove_message(q, row, fifo, now)
      dropped = true
    elseif dlq and count > max_receives then
      move_to_dlq(q, dlq, row, fifo, now)
      dropped = true
    else
      redis.call('ZADD', qkey(q, 'msgs'), now + vt, row)
      redis.call('ZREM', qkey(q, 'delayed'), row)
      redis.call('HSETNX', m, 'frat', now)
      redis.call('HSET', m, 'rat', now, 'rcpt', token)
      local f = redis.call('HMGET', m, """
    + _RECEIVED_FIELDS
    + """)
      if f[12] then f[12] = redis.call('HGET', qkey(f[12], 'meta'), 'name') end
      table.insert(out, row)
      for i = 1, 13 do table.insert(out, f[i]) end
      delivered = delivered + 1
      if fifo and f[9] then groups[f[9]] = true end
    end
  end
  for group in pairs(groups) do place_group(q, group, now) end
  -- Claim more only to replace what was dropped or moved. With a zero visibility timeout
  -- the rows just claimed are claimable again: a second round could return them twice.
  if not dropped or vt == 0 then break end
end
local wake_key = qkey(q, 'wake')
if delivered == 0 then
  redis.call('DEL', wake_key)  -- nothing was claimable: every token was stale
  local next_row = redis.call('ZRANGEBYSCORE', qkey(q, 'msgs'), '(' .. now, '+inf',
    'WITHSCORES', 'LIMIT', 0, 1)
  if #next_row > 0 then out[3] = tonumber(next_row[2]) end
else
  redis.call('LTRIM', wake_key, delivered, -1)
end
return out
"""
)

# ARGV[4]: the count; then (row, message id, receipt token) per handle.
# Answers {'ok', 'ok' | 'expired' per handle}.
DELETE = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local fifo = is_fifo(q)
local out = {'ok'}
local freed = 0
for i = 0, tonumber(ARGV[4]) - 1 do
  local row, mid, token = ARGV[5 + i * 3], ARGV[6 + i * 3], ARGV[7 + i * 3]
  local f = redis.call('HMGET', mkey(row), 'q', 'mid', 'rcpt')
  local status = 'ok'  -- already deleted: deleting twice succeeds, as in SQS
  if f[1] == q and f[2] == mid then
    if not fifo then
      remove_message(q, row, fifo, now)  -- any receive's handle deletes, as in SQS
    elseif f[3] ~= token or tonumber(redis.call('ZSCORE', qkey(q, 'msgs'), row)) <= now then
      -- Deleting on an old receive could drop a message someone else now holds.
      status = 'expired'
    else
      remove_message(q, row, fifo, now)
      freed = freed + 1
    end
  end
  table.insert(out, status)
end
wake(q, freed)  -- a delete can unblock the message's group
return out
"""
)

# ARGV[4]: row; [5]: message id; [6]: timeout (s); [7]: the limit on the total (s).
# Answers {'ok' | 'missing' | 'ignored' | 'limit'}.
CHANGE_VISIBILITY = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local row, timeout = ARGV[4], tonumber(ARGV[6])
local f = redis.call('HMGET', mkey(row), 'q', 'mid', 'rat')
if f[1] ~= q or f[2] ~= ARGV[5] then return {'missing'} end
-- Its visibility timeout already ran out: SQS accepts the call and changes nothing.
if tonumber(redis.call('ZSCORE', qkey(q, 'msgs'), row)) <= now then return {'ignored'} end
local received = tonumber(f[3] or now)
-- Whole seconds, as SQS counts: 43200 right after the receive is allowed.
if math.floor((now - received) / 1000) + timeout > tonumber(ARGV[7]) then return {'limit'} end
set_visible_at(q, row, is_fifo(q), now + timeout * 1000, now)
if timeout == 0 then wake(q, 1) end
return {'ok'}
"""
)

# ARGV[4]: retention (ms); [5]: dead-letter queue name or ''.
# Answers {'ok', now, visible, in flight, delayed, oldest enqueue time or -1, DLQ depth or -1}.
STATS = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
sweep(q, now - tonumber(ARGV[4]), is_fifo(q), now)
local later = '(' .. now
local visible = redis.call('ZCOUNT', qkey(q, 'msgs'), '-inf', now)
local hidden = redis.call('ZCOUNT', qkey(q, 'msgs'), later, '+inf')
local delayed = redis.call('ZCOUNT', qkey(q, 'delayed'), later, '+inf')
local oldest = redis.call('ZRANGE', qkey(q, 'age'), 0, 0, 'WITHSCORES')
local dlq = ARGV[5] ~= '' and redis.call('HGET', P .. 'queues', ARGV[5])
local depth = -1
if dlq then depth = redis.call('ZCARD', qkey(dlq, 'msgs')) end
return {'ok', now, visible, hidden - delayed, delayed, tonumber(oldest[2] or -1), depth}
"""
)

# ARGV[4]: the minimum interval between purges (ms). Answers {'ok'} or {'busy', ms left}.
PURGE = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local meta = qkey(q, 'meta')
local purged = tonumber(redis.call('HGET', meta, 'purged') or -1)
if purged >= 0 and now - purged < tonumber(ARGV[4]) then
  return {'busy', tonumber(ARGV[4]) - (now - purged)}
end
-- A purge forgets deduplication ids too: a message sent again after it is new.
clear_messages(q)
redis.call('HSET', meta, 'purged', now)
return {'ok'}
"""
)

# Moves the visible messages of dead-letter queue ARGV[2] (oldest first, at most ARGV[5]
# unless it is -1) to queue ARGV[4], or to their source queues when it is ''. A message
# moved out starts over with no receives. Answers {'ok', (queue id, count)...}.
REDRIVE = script(
    """
local dlq = ARGV[2]
local bad = check(dlq, ARGV[3]) if bad then return {bad} end
local now = now_ms()
local destination, limit = ARGV[4], tonumber(ARGV[5])
local dlq_fifo = is_fifo(dlq)
local ordered = {}
for _, row in ipairs(redis.call('ZRANGEBYSCORE', qkey(dlq, 'msgs'), '-inf', now)) do
  local order = tonumber(row)
  if dlq_fifo then order = tonumber(redis.call('HGET', mkey(row), 'seq')) end
  table.insert(ordered, {order, row})
end
table.sort(ordered, function(a, b) return a[1] < b[1] end)
local moved, homes, total = {}, {}, 0
for _, item in ipairs(ordered) do
  if limit >= 0 and total >= limit then break end
  local row = item[2]
  local m = mkey(row)
  local home = destination
  if home == '' then home = redis.call('HGET', m, 'src') or '' end
  -- Messages whose source queue was deleted stay where they are.
  if home ~= '' and redis.call('EXISTS', qkey(home, 'meta')) == 1 then
    detach(dlq, row, dlq_fifo, now)
    local home_fifo = is_fifo(home)
    redis.call('HDEL', m, 'src', 'frat', 'rat', 'rcpt')
    redis.call('HSET', m, 'q', home, 'rc', 0)
    local enqueued_at = redis.call('HGET', m, 'enq')
    if home_fifo then
      redis.call('HSET', m, 'seq', redis.call('HINCRBY', qkey(home, 'meta'), 'seq', 1), 'enq', now)
      enqueued_at = now
    end
    attach(home, row, home_fifo, enqueued_at, now)
    if not moved[home] then
      moved[home] = 0
      table.insert(homes, home)
    end
    moved[home] = moved[home] + 1
    total = total + 1
  end
end
local out = {'ok'}
for _, home in ipairs(homes) do
  wake(home, moved[home])
  table.insert(out, home)
  table.insert(out, moved[home])
end
return out
"""
)
