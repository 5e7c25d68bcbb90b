-- Before calling the provider: is this message still worth sending, and is it ours to send?
-- KEYS[1] code hash  KEYS[2] request state hash  KEYS[3] lease
-- KEYS[4] outbox index (zset)  KEYS[5] outbox messages (hash)  KEYS[6] the message's pin
-- ARGV[1] message id  ARGV[2] lease (ms)  ARGV[3] lease token  ARGV[4] now (ms)
-- ARGV[5] the providers this worker lists, comma-separated
-- ARGV[6] the provider to pin the message to as the lease is taken ('' when failover pins
-- each call itself)  ARGV[7] the pin's ttl (s)
-- Returns 'go' (lease taken), 'sent' | 'failed' | 'expired' | 'skipped' (already final),
-- 'busy' (another worker holds the lease) or 'elsewhere' (pinned to a provider this worker
-- does not list: it may have sent the code, so no other provider may). A final answer also
-- leaves the outbox. Needs lib_pins.lua.
local function final(state)
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  return state
end
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'sent' or state == 'failed' or state == 'expired' or state == 'skipped' then
  return final(state)
end
if redis.call('HGET', KEYS[1], 'mid') ~= ARGV[1] then
  -- verified, burned, expired or replaced: sending now would waste an SMS
  if state then redis.call('HSET', KEYS[2], 'state', 'skipped', 'updated', ARGV[4]) end
  return final('skipped')
end
local pin = redis.call('GET', KEYS[6])
if pinned_elsewhere(pin, ARGV[5]) then return 'elsewhere' end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[2]) then
  if ARGV[6] ~= '' and not pin then
    redis.call('SET', KEYS[6], pin_value(ARGV[6], clock_ms()), 'EX', ARGV[7])
  end
  return 'go'
end
return 'busy'
