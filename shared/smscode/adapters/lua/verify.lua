-- Check a code, count the try, burn or consume the code, atomically.
-- KEYS[1] code hash  KEYS[2] phone's daily verify-failure counter
-- ARGV[1] candidate hmac  ARGV[2] max wrong tries per code  ARGV[3] daily failure cap per phone
-- Returns {'ok', request_id} | {'locked'} | {'none'} | {'invalid', attempts_left} | {'burned'}.
-- Pumping, counted on 'ok' by count_verified (lib_pumping.lua): KEYS[3] the block's window hash (as in issue.lua)
-- KEYS[4] this hour's stats hash  KEYS[5] this hour's verified per block (zset)
-- ARGV[4] block  ARGV[5] 1 to count it in its window, 0 when allow-listed  ARGV[6] bucket (s)
-- ARGV[7] buckets per window  ARGV[8] now (ms)
-- Timing: Lua interns strings, so `==` below compares two pointers; interning itself may
-- memcmp equal-hash strings, but both sides are HMACs keyed by CODE_SECRET, so even a timing
-- that told how many leading characters match would say nothing about the code.
local function fail()
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], 86400) end
end

if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then return {'locked'} end
local stored = redis.call('HMGET', KEYS[1], 'h', 'rid')
if not stored[1] then
  fail()
  return {'none'}
end
if stored[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  count_verified(KEYS[3], KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  return {'ok', stored[2]}
end
fail()
local tries = redis.call('HINCRBY', KEYS[1], 'n', 1)
local left = tonumber(ARGV[2]) - tries
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {'burned'}
end
return {'invalid', left}
