-- Before calling the provider: is this message still worth sending, and is it ours to send?
-- KEYS[1] code hash  KEYS[2] request state hash  KEYS[3] lease
-- ARGV[1] message id  ARGV[2] lease (ms)  ARGV[3] lease token  ARGV[4] now (ms)
-- Returns 'go' (lease taken), 'sent' | 'failed' | 'expired' | 'skipped' (already final),
-- or 'busy' (another worker holds the lease).
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'sent' or state == 'failed' or state == 'expired' or state == 'skipped' then
  return state
end
if redis.call('HGET', KEYS[1], 'mid') ~= ARGV[1] then
  -- verified, burned, expired or replaced: sending now would waste an SMS
  if state then redis.call('HSET', KEYS[2], 'state', 'skipped', 'updated', ARGV[4]) end
  return 'skipped'
end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[2]) then return 'go' end
return 'busy'
