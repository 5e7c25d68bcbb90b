-- May this call go to the provider? Closed: yes. Open: no, until the cool-down has passed;
-- then the circuit turns half-open and this caller is its one probe. Half-open: no while
-- the probe is out; a probe that never reported (its worker died) lapses after ARGV[3].
-- KEYS[1] the provider's circuit hash (state, opened, probe, failures, since)
-- ARGV[1] now (ms)  ARGV[2] cool-down (ms)  ARGV[3] how long a probe may take (ms)
-- Returns {1 | 0 (allowed or not), state before, state after}.
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[1])
if state == 'closed' then return {1, state, state} end
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened') or '0')
  if now < opened + tonumber(ARGV[2]) then return {0, state, state} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', now + tonumber(ARGV[3]))
  return {1, state, 'half_open'}
end
if now < tonumber(redis.call('HGET', KEYS[1], 'probe') or '0') then return {0, state, state} end
redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[3]))
return {1, state, state}
