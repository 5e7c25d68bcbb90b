-- Check a code against a pending verification's own code: count it, approve or exhaust it.
-- KEYS[1] verification record  KEYS[2] code hash  KEYS[3] the number's daily failure counter
-- ARGV[1] verification sid, or '' for the number's pending one  ARGV[2] candidate hmac
-- ARGV[3] checks allowed per verification  ARGV[4] daily failure cap  ARGV[5] now (ms)
-- Pumping, counted on 'ok' by count_verified (lib_pumping.lua), as verify.lua counts it:
-- KEYS[4] the block's window  KEYS[5] this hour's stats  KEYS[6] this hour's verified per block
-- ARGV[6] block  ARGV[7] 1 to count it in its window  ARGV[8] bucket (s)  ARGV[9] buckets
-- ARGV[10] now (ms)
-- Returns {outcome, record as a flat list}: 'ok' | 'invalid' (the record says whether that
-- was the last check) | 'max' | 'locked' | 'none' (the last three with an empty record).
-- The code is the verification's only while the code hash carries the request id it issued:
-- a later send to the number, under any service, replaces the code and ends the verification.
local function fail()
  if redis.call('INCR', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], 86400) end
end

local rec = redis.call('HMGET', KEYS[1], 'sid', 'status', 'rid')
if not rec[1] or (ARGV[1] ~= '' and rec[1] ~= ARGV[1]) then return {'none', {}} end
if rec[2] == 'max_attempts_reached' then return {'max', {}} end
if rec[2] ~= 'pending' then return {'none', {}} end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return {'locked', {}} end
local code = redis.call('HMGET', KEYS[2], 'h', 'rid')
if not code[1] or code[2] ~= rec[3] then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'updated', ARGV[5])
  return {'none', {}}
end
if code[1] == ARGV[2] then
  redis.call('DEL', KEYS[2])
  count_verified(KEYS[4], KEYS[5], KEYS[6], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  redis.call('HSET', KEYS[1], 'status', 'approved', 'updated', ARGV[5])
  return {'ok', redis.call('HGETALL', KEYS[1])}
end
fail()
local status = 'pending'
if redis.call('HINCRBY', KEYS[1], 'checks', 1) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
  status = 'max_attempts_reached'
end
redis.call('HSET', KEYS[1], 'status', status, 'updated', ARGV[5])
return {'invalid', redis.call('HGETALL', KEYS[1])}
