-- Bind a code just issued to the number's verification: add a send to the pending one, else
-- start a new one (Twilio keeps one pending verification per service and number).
-- KEYS[1] verification record  KEYS[2] sid index for a new verification  KEYS[3] code hash
-- ARGV[1] sid for a new verification  ARGV[2] request id just issued  ARGV[3] send attempt sid
-- ARGV[4] now (ms)  ARGV[5] record ttl (s)  ARGV[6] service sid  ARGV[7] phone
-- ARGV[8] sid index ttl (s)
-- Returns the record as a flat field/value list.
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'service', ARGV[6], 'phone', ARGV[7],
    'status', 'pending', 'checks', 0, 'sends', '[]', 'created', ARGV[4], 'rid', '')
  redis.call('SET', KEYS[2], ARGV[6] .. ' ' .. ARGV[7], 'EX', ARGV[8])
end
local sends = cjson.decode(redis.call('HGET', KEYS[1], 'sends'))
table.insert(sends, {ARGV[3], ARGV[4]})
-- A send that another has already replaced binds nothing: its code can no longer be checked.
if redis.call('HGET', KEYS[3], 'rid') == ARGV[2] then redis.call('HSET', KEYS[1], 'rid', ARGV[2]) end
redis.call('HSET', KEYS[1], 'sends', cjson.encode(sends), 'updated', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('HGETALL', KEYS[1])
