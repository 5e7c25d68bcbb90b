-- Cancel or approve a pending verification by hand; its code stops working everywhere.
-- KEYS[1] verification record  KEYS[2] code hash
-- ARGV[1] verification sid  ARGV[2] new status ('canceled' | 'approved')  ARGV[3] now (ms)
-- Returns the record as a flat field/value list, or {} when that verification is not pending.
local rec = redis.call('HMGET', KEYS[1], 'sid', 'status', 'rid')
if rec[1] ~= ARGV[1] or rec[2] ~= 'pending' then return {} end
if redis.call('HGET', KEYS[2], 'rid') == rec[3] then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated', ARGV[3])
return redis.call('HGETALL', KEYS[1])
