-- Decide and record one send, atomically: every cap is checked before anything is written.
-- KEYS[1] code hash          KEYS[2] resend marker      KEYS[3] phone daily counter
-- KEYS[4] ip hourly counter  KEYS[5] prefix hourly counter  KEYS[6] global minute counter
-- KEYS[7] request state hash
-- ARGV[1] code hmac  ARGV[2] message id  ARGV[3] request id  ARGV[4] code ttl (s)
-- ARGV[5] resend interval (s)  ARGV[6] phone daily limit  ARGV[7] ip hourly limit
-- ARGV[8] prefix hourly limit  ARGV[9] global minute limit  ARGV[10] masked phone  ARGV[11] now (ms)
-- (speed) KEYS[8] outbox index  KEYS[9] outbox messages  KEYS[10] broker queue list (only
-- when ARGV[14] is set)  ARGV[12] outbox payload ('' = none)  ARGV[13] outbox due (ms)
-- ARGV[14] Celery envelope to LPUSH onto KEYS[10] ('' = none); see the block marked "speed".
-- Returns {1} when accepted, else {0, reason, retry_after_seconds}.
-- Pumping (issue 19): the LAST 6 KEYS and LAST 8 ARGV, addressed from the end so other
-- additions may come before them; see the block marked "pumping" below.
local function wait(key)
  local ms = redis.call('PTTL', key)
  if ms < 0 then return 1 end
  return math.ceil(ms / 1000)
end

if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 'resend_interval', wait(KEYS[2])} end

-- ---- pumping: conversion per number block, judged BEFORE any cap is counted ----
-- KEYS[-6] block's window hash: s<bucket> sends, v<bucket> verified, and their totals S, V
-- over the buckets from o on  KEYS[-5] blocked blocks (zset, score = until ms)
-- KEYS[-4] blocked blocks' details (hash)  KEYS[-3] this hour's stats hash
-- KEYS[-2] this hour's sends per block (zset)  KEYS[-1] this hour's fraud refusals per block
-- ARGV[-8] block  ARGV[-7] 1 to judge and count it, 0 when allow-listed  ARGV[-6] min sends
-- ARGV[-5] min conversion  ARGV[-4] bucket (s)  ARGV[-3] buckets per window
-- ARGV[-2] block (s)  ARGV[-1] now (ms)
-- Refuses {0, 'fraud_suspected', retry_after, new, sends, verified}; new = 1 when this
-- call blocked the block. A refused send writes no cap and no code.
local pk, pa = #KEYS - 6, #ARGV - 8
local p_window, p_blocked, p_details = KEYS[pk + 1], KEYS[pk + 2], KEYS[pk + 3]
local p_hour, p_hour_sends, p_hour_refused = KEYS[pk + 4], KEYS[pk + 5], KEYS[pk + 6]
local p_block, p_judge = ARGV[pa + 1], ARGV[pa + 2] == '1'
local p_now, p_buckets = tonumber(ARGV[pa + 8]), tonumber(ARGV[pa + 6])
local p_bucket = math.floor(p_now / 1000 / tonumber(ARGV[pa + 5]))
local function p_refuse(until_ms, new, sends, verified)
  redis.call('ZINCRBY', p_hour_refused, 1, p_block)
  if redis.call('HINCRBY', p_hour, 'refused', 1) == 1 then  -- the hour's first: keep it 25 h
    redis.call('EXPIRE', p_hour, 90000)
    redis.call('EXPIRE', p_hour_refused, 90000)
  end
  return {0, 'fraud_suspected', math.ceil((until_ms - p_now) / 1000), new, sends, verified}
end
-- The window's totals, slid to now: buckets older than the window leave S and V as they
-- leave the hash, so a send costs the same however busy its block is.
local function p_slide()
  local oldest = p_bucket - p_buckets + 1
  local w = redis.call('HMGET', p_window, 'o', 'S', 'V')
  local o, sends, verified = tonumber(w[1]), tonumber(w[2] or '0'), tonumber(w[3] or '0')
  if o ~= nil and o < oldest then
    local drop = {}
    if oldest - o > p_buckets then  -- idle for longer than a window: recount what is left
      sends, verified = 0, 0
      local fields = redis.call('HGETALL', p_window)
      for i = 1, #fields, 2 do
        local b = tonumber(string.sub(fields[i], 2))  -- nil for o, S, V
        if b ~= nil and b < oldest then
          drop[#drop + 1] = fields[i]
        elseif b ~= nil and string.byte(fields[i]) == 115 then  -- 's'
          sends = sends + tonumber(fields[i + 1])
        elseif b ~= nil then
          verified = verified + tonumber(fields[i + 1])
        end
      end
    else
      for b = o, oldest - 1 do
        local gone = redis.call('HMGET', p_window, 's' .. b, 'v' .. b)
        sends = sends - tonumber(gone[1] or '0')
        verified = verified - tonumber(gone[2] or '0')
        drop[#drop + 1], drop[#drop + 2] = 's' .. b, 'v' .. b
      end
    end
    if #drop > 0 then redis.call('HDEL', p_window, unpack(drop)) end
  end
  if o == nil or o < oldest then
    redis.call('HSET', p_window, 'o', oldest, 'S', sends, 'V', verified)
  end
  return sends, verified
end
if p_judge then
  local until_ms = tonumber(redis.call('ZSCORE', p_blocked, p_block) or '0')
  if until_ms > p_now then return p_refuse(until_ms, 0, 0, 0) end
  local sends, verified = p_slide()
  if sends >= tonumber(ARGV[pa + 3]) and verified < tonumber(ARGV[pa + 4]) * sends then
    until_ms = p_now + 1000 * tonumber(ARGV[pa + 7])
    redis.call('ZADD', p_blocked, until_ms, p_block)
    redis.call('HSET', p_details, p_block, 'auto:' .. sends .. ':' .. verified)
    return p_refuse(until_ms, 1, sends, verified)
  end
end
local function p_count()
  if p_judge then
    redis.call('HINCRBY', p_window, 's' .. p_bucket, 1)
    redis.call('HINCRBY', p_window, 'S', 1)
    redis.call('PEXPIRE', p_window, 1000 * tonumber(ARGV[pa + 5]) * (p_buckets + 1))
  end
  redis.call('ZINCRBY', p_hour_sends, 1, p_block)
  if redis.call('HINCRBY', p_hour, 'sends', 1) == 1 then
    redis.call('EXPIRE', p_hour, 90000)
    redis.call('EXPIRE', p_hour_sends, 90000)
  end
end
-- ---- end pumping (p_count() runs once the send is accepted) ----

local caps = {
  {KEYS[3], ARGV[6], 'phone_daily'}, {KEYS[4], ARGV[7], 'ip_hourly'},
  {KEYS[5], ARGV[8], 'prefix_hourly'}, {KEYS[6], ARGV[9], 'global_minute'},
}
for _, cap in ipairs(caps) do
  if tonumber(redis.call('GET', cap[1]) or '0') >= tonumber(cap[2]) then
    return {0, cap[3], wait(cap[1])}
  end
end

local windows = {{KEYS[3], 86400}, {KEYS[4], 3600}, {KEYS[5], 3600}, {KEYS[6], 60}}
for _, w in ipairs(windows) do
  if redis.call('INCR', w[1]) == 1 then redis.call('EXPIRE', w[1], w[2]) end
end
local ttl = tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'mid', ARGV[2], 'rid', ARGV[3], 'n', 0)
redis.call('EXPIRE', KEYS[1], ttl)
if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5]) end
redis.call('HSET', KEYS[7], 'state', 'queued', 'phone', ARGV[10], 'mid', ARGV[2], 'updated', ARGV[11])
redis.call('EXPIRE', KEYS[7], ttl)

-- ---- speed: the accepted send's message, in the same step ----
-- Kept in the outbox until a worker records a final state, and, when the broker is this
-- Redis, already queued for the worker: an accepted send is one round trip.
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[9], ARGV[2], ARGV[12])
  redis.call('ZADD', KEYS[8], ARGV[13], ARGV[2])
  if ARGV[14] ~= '' then redis.call('LPUSH', KEYS[10], ARGV[14]) end
end
-- ---- end speed ----
p_count()
return {1}
