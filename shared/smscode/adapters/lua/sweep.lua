-- Hand out the outbox messages nobody has finished in time, for republishing, once each.
-- KEYS[1] outbox index (zset: message id -> due ms)  KEYS[2] outbox messages (hash)
-- ARGV[1] now (ms)  ARGV[2] next due (ms) for those handed out  ARGV[3] at most this many
-- Returns the payloads handed out; ids whose payload is gone are dropped from the index.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = payload
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
