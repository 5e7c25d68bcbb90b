-- Check a code, count the try, consume or burn the code, atomically.
-- KEYS[1] code hash  KEYS[2] phone's daily verify-failure counter
-- KEYS[3] the client's hourly verify-failure counter
-- ARGV[1] candidate hmac  ARGV[2] max wrong tries per code  ARGV[3] daily failure cap per phone
-- ARGV[4] hourly failure cap per client  ARGV[5] how long a consumed code is kept (ms)
-- ARGV[6] this call's nonce
-- Pumping, counted on 'ok' by count_verified (lib_pumping.lua, prepended): KEYS[4..8] and
-- ARGV[7..12], see pumping_verify.
-- Returns {'ok', request_id} | {'throttled', retry_after} | {'locked'} | {'none'}
-- | {'invalid', attempts_left} | {'burned'}.
-- A failure costs the client that asked (KEYS[3]); the phone's own counter (KEYS[2]) counts
-- only wrong codes against a live code, so a phone without one has nothing read or written
-- here, and no one can lock a phone out without its codes being sent.
-- A right code is not deleted but consumed: it loses its message id (no SMS goes out for it
-- any more), is marked with this call's nonce and kept ARGV[5] ms, answering 'none'. If the
-- reply never reaches the service, verify_lost.lua marks it 'lost' and its right code
-- succeeds once more (nothing counted twice); one it marked 'abandoned' with this nonce has
-- not run and never shall.
-- Timing: Lua interns strings, so `==` below compares two pointers; interning itself may
-- memcmp equal-hash strings, but both sides are HMACs keyed by CODE_SECRET, so even a timing
-- that told how many leading characters match would say nothing about the code.
local function wait(key)
  local ms = redis.call('PTTL', key)
  if ms < 0 then return 1 end
  return math.ceil(ms / 1000)
end
local function failed(outcome, detail)
  if redis.call('INCR', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], 3600) end
  return {outcome, detail}
end
local function consume(code)
  redis.call('HDEL', code, 'mid')
  redis.call('HSET', code, 'ok', ARGV[6])
  local left = redis.call('PTTL', code)
  if left < 0 or left > tonumber(ARGV[5]) then redis.call('PEXPIRE', code, ARGV[5]) end
end

if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then
  return {'throttled', wait(KEYS[3])}
end
local stored = redis.call('HMGET', KEYS[1], 'h', 'rid', 'ok', 'abandoned', 'pn', 'pe', 'pc')
if not stored[1] then return failed('none') end
if stored[4] == ARGV[6] then return {'none'} end  -- given up on by its caller: nobody reads this
if stored[3] then  -- consumed: only a right code whose success was lost, once
  if stored[3] == 'lost' and stored[1] == ARGV[1] then
    consume(KEYS[1])
    return {'ok', stored[2]}
  end
  return failed('none')
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then
  return failed('locked')
end
if stored[1] == ARGV[1] then
  consume(KEYS[1])
  count_verified(pumping_verify(4, 7), {stored[5], stored[6], stored[7]})
  return {'ok', stored[2]}
end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], 86400) end
local tries = redis.call('HINCRBY', KEYS[1], 'n', 1)
local left = tonumber(ARGV[2]) - tries
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return failed('burned')
end
return failed('invalid', left)
