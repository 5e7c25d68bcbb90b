-- Hand out the outbox messages nobody has finished in time, for republishing, once each.
-- KEYS[1] outbox index (zset: message id -> due ms)  KEYS[2] outbox messages (hash)
-- ARGV[1] now (ms)  ARGV[2] next due (ms) for those handed out  ARGV[3] at most this many
-- ARGV[4] the pins' key prefix  ARGV[5] the providers the sweeper's workers list, comma-separated
-- Returns the payloads handed out; ids whose payload is gone are dropped from the index. A
-- message pinned to a provider those workers do not list stays due, for a sweeper whose
-- workers list it (another deployment on this Redis): they could not send it. Needs
-- lib_pins.lua. (Pin keys share the outbox's hash tag: one Cluster slot.)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  local payload = redis.call('HGET', KEYS[2], id)
  if not payload then
    redis.call('ZREM', KEYS[1], id)
  elseif not pinned_elsewhere(redis.call('GET', ARGV[4] .. id), ARGV[5]) then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = payload
  end
end
return out
