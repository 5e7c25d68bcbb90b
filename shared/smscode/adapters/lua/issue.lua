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
-- Pumping: the LAST 9 KEYS and LAST 11 ARGV, addressed from the end so other
-- additions may come before them; see lib_pumping.lua (prepended) and the block marked
-- "pumping" below.
local function wait(key)
  local ms = redis.call('PTTL', key)
  if ms < 0 then return 1 end
  return math.ceil(ms / 1000)
end

if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 'resend_interval', wait(KEYS[2])} end

-- ---- pumping: conversion per number block and client network, judged BEFORE any cap ----
-- Refuses {0, 'fraud_suspected', retry_after, new, sends, verified, scope} (lib_pumping.lua):
-- a refused send writes no cap and no code.
local pumping = pumping_send()
local refused, entered = judge_send(pumping)
if refused then return refused end
-- ---- end pumping (count_send runs once the send is accepted) ----

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
count_send(pumping, KEYS[1], entered)
return {1}
