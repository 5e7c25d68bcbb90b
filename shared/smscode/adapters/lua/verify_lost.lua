-- A verify (verify.lua, verification_check.lua) whose reply never came: it may have run or
-- not, and may still arrive. Either way the asker is told to try again, so its code must not
-- be lost to it: a code that call consumed takes its right code once more, and a call that
-- has not run yet does nothing when it does.
-- KEYS[1] code hash  ARGV[1] the call's nonce
-- Returns 'lost' (it had consumed the code), 'abandoned' (it had not run) or 'none' (no code).
local stored = redis.call('HMGET', KEYS[1], 'h', 'ok')
if not stored[1] then return 'none' end
if stored[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'ok', 'lost')
  return 'lost'
end
redis.call('HSET', KEYS[1], 'abandoned', ARGV[1])
return 'abandoned'
