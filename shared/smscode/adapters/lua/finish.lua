-- Record what a delivery attempt ended in and release its lease.
-- KEYS[1] request state hash  KEYS[2] lease  KEYS[3] outbox index  KEYS[4] outbox messages
-- ARGV[1] state ('sent', 'failed', 'expired', 'skipped' or '' to keep it)  ARGV[2] provider sid
-- ARGV[3] lease token  ARGV[4] now (ms)  ARGV[5] ttl (s) if the hash has none
-- ARGV[6] masked phone, written when the hash is gone (it expires with the code, and an
-- 'expired' state is recorded just after that: the state API needs the phone to answer)
-- ARGV[7] message id  ARGV[8] when the outbox should next look at an unfinished message (ms)
-- ARGV[9] the provider that sent it ('' if none)
-- A 'sent' state is never overwritten. A final message leaves the outbox. Returns the state.
-- KEYS[5] this hour's stats hash (issue 19): each change of final state counted, 25 h.
-- KEYS[6] the message's provider pin, dropped once final: claim answers a final state first.
-- Fenced: an attempt (ARGV[3] its token) records a final state other than 'sent' only while
-- it holds the lease; a worker whose lease lapsed must not end a message another worker may
-- be sending. 'sent' is a fact whoever learns it, and is always recorded.
local state = redis.call('HGET', KEYS[1], 'state')
local ours = ARGV[3] == '' or redis.call('GET', KEYS[2]) == ARGV[3]
if ARGV[1] ~= '' and state ~= 'sent' and (ours or ARGV[1] == 'sent') then
  if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'phone', ARGV[6]) end
  if state ~= ARGV[1] and redis.call('HINCRBY', KEYS[5], 'delivery_' .. ARGV[1], 1) == 1 then
    redis.call('EXPIRE', KEYS[5], 90000)
  end
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'sid', ARGV[2], 'updated', ARGV[4])
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'provider', ARGV[9]) end
  if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
  state = ARGV[1]
end
if state == 'sent' or (ARGV[1] ~= '' and state == ARGV[1]) then
  redis.call('ZREM', KEYS[3], ARGV[7])
  redis.call('HDEL', KEYS[4], ARGV[7])
  redis.call('DEL', KEYS[6])
else
  redis.call('ZADD', KEYS[3], 'XX', ARGV[8], ARGV[7])  -- a retry is coming: not lost yet
end
if ARGV[3] ~= '' and ours then redis.call('DEL', KEYS[2]) end
return state
