-- What one call to the provider ended in, for its circuit.
-- 'success' closes it and clears the failures. 'trip' (a permanent refusal) opens it at
-- once. 'failure' reopens a half-open circuit, and opens a closed one at the ARGV[3]-th
-- failure in a row within ARGV[4] ms.
-- KEYS[1] the provider's circuit hash (state, opened, probe, failures, since)
-- ARGV[1] 'success' | 'failure' | 'trip'  ARGV[2] now (ms)  ARGV[3] failures to open
-- ARGV[4] window (ms)
-- Returns {state before, state after}.
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[2])
if ARGV[1] == 'success' then
  if state ~= 'closed' or redis.call('HGET', KEYS[1], 'failures') ~= '0' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'since', now)
  end
  return {state, 'closed'}
end
if ARGV[1] == 'trip' or state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now, 'failures', 0, 'since', now)
  return {state, 'open'}
end
if state == 'open' then return {state, state} end  -- a late answer from before it opened
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0')
if now - since > tonumber(ARGV[4]) then redis.call('HSET', KEYS[1], 'since', now, 'failures', 0) end
if redis.call('HINCRBY', KEYS[1], 'failures', 1) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now, 'failures', 0, 'since', now)
  return {state, 'open'}
end
return {state, state}
