-- Hand out the outbox messages nobody has finished in time, for republishing, once each.
-- The caller reads due ids first (ZRANGEBYSCORE) and passes each id's pin key, so that every
-- key the script touches is declared (Redis Cluster, Dragonfly, key-routing proxies).
-- KEYS[1] outbox index (zset: message id -> due ms)  KEYS[2] outbox messages (hash)
-- KEYS[3..] the pins of the ids in ARGV[4..], in the same order
-- ARGV[1] now (ms)  ARGV[2] next due (ms) for those handed out
-- ARGV[3] the providers the sweeper's workers list, comma-separated  ARGV[4..] message ids
-- Returns {payloads handed out, {id, payload} of those left for others}. An id no longer due
-- (another sweeper took it meanwhile) is passed over; one whose payload is gone leaves the
-- index. One pinned to a provider these workers do not list stays due as it is, for a
-- sweeper whose workers list it (another deployment on this Redis): they could not send it,
-- and re-scoring it could keep that sweeper from ever seeing it due. Needs lib_pins.lua.
local out, elsewhere = {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= tonumber(ARGV[1]) then
    local payload = redis.call('HGET', KEYS[2], id)
    if not payload then
      redis.call('ZREM', KEYS[1], id)
    elseif pinned_elsewhere(redis.call('GET', KEYS[i - 1]), ARGV[3]) then
      elsewhere[#elsewhere + 1] = {id, payload}
    else
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = payload
    end
  end
end
return {out, elsewhere}
