-- Check a code against a pending verification's own code: count it, approve or exhaust it.
-- KEYS[1] verification record  KEYS[2] code hash  KEYS[3] the number's daily failure counter
-- ARGV[1] verification sid, or '' for the number's pending one  ARGV[2] candidate hmac
-- ARGV[3] checks allowed per verification  ARGV[4] daily failure cap  ARGV[5] now (ms)
-- ARGV[6] how long a consumed code is kept (ms)  ARGV[7] this call's nonce
-- Pumping, counted on 'ok' by count_verified (lib_pumping.lua, prepended), as verify.lua
-- counts it: KEYS[4..8] and ARGV[8..13], see pumping_verify.
-- Returns {outcome, record as a flat list}: 'ok' | 'invalid' (the record says whether that
-- was the last check) | 'max' | 'locked' | 'none' (the last three with an empty record).
-- The code is the verification's only while the code hash carries the request id it issued:
-- a later send to the number, under any service, replaces the code and ends the verification.
-- Without a live code nothing is written. An approval consumes the code as verify.lua does
-- (kept, marked with this call's nonce, 'lost' and approved once more after verify_lost.lua).
local function consume()
  redis.call('HDEL', KEYS[2], 'mid')
  redis.call('HSET', KEYS[2], 'ok', ARGV[7])
  local left = redis.call('PTTL', KEYS[2])
  if left < 0 or left > tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
end

local rec = redis.call('HMGET', KEYS[1], 'sid', 'status', 'rid')
if not rec[1] or (ARGV[1] ~= '' and rec[1] ~= ARGV[1]) then return {'none', {}} end
if rec[2] == 'max_attempts_reached' then return {'max', {}} end
local code = redis.call('HMGET', KEYS[2], 'h', 'rid', 'ok', 'abandoned', 'pn', 'pe', 'pc')
if code[4] == ARGV[7] then return {'none', {}} end  -- given up on by its caller
local live = code[1] and code[2] == rec[3]
if live and code[3] == 'lost' and rec[2] == 'approved' and code[1] == ARGV[2] then
  consume()  -- an approval whose reply was lost: approved once more
  return {'ok', redis.call('HGETALL', KEYS[1])}
end
if rec[2] ~= 'pending' or not live or code[3] then return {'none', {}} end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return {'locked', {}} end
if code[1] == ARGV[2] then
  consume()
  count_verified(pumping_verify(4, 8), {code[5], code[6], code[7]})
  redis.call('HSET', KEYS[1], 'status', 'approved', 'updated', ARGV[5])
  return {'ok', redis.call('HGETALL', KEYS[1])}
end
if redis.call('INCR', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], 86400) end
local status = 'pending'
if redis.call('HINCRBY', KEYS[1], 'checks', 1) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
  status = 'max_attempts_reached'
end
redis.call('HSET', KEYS[1], 'status', status, 'updated', ARGV[5])
return {'invalid', redis.call('HGETALL', KEYS[1])}
