-- One round trip of the Redis-broker worker: acknowledge finished tasks, keep retried ones
-- visible, and take new ones, each recorded as unacknowledged exactly as kombu's Redis
-- transport records it (so a stock Celery worker restores ours, and we restore its).
-- KEYS[1] the queue's list  KEYS[2] kombu's `unacked` hash  KEYS[3] kombu's `unacked_index` zset
-- ARGV[1] now (seconds)  ARGV[2] take at most this many  ARGV[3] the queue name, JSON-encoded
-- ARGV[4] n acks, then n delivery tags to acknowledge, then delivery tags to keep visible
-- Returns tag, envelope, tag, envelope, ... oldest first ('' for an envelope without a tag).
local now, routing, acks = ARGV[1], ARGV[3], tonumber(ARGV[4])
for first = 5, 4 + acks, 1000 do  -- unpack() has a limit: at most 1,000 tags per command
  local last = math.min(first + 999, 4 + acks)
  redis.call('ZREM', KEYS[3], unpack(ARGV, first, last))
  redis.call('HDEL', KEYS[2], unpack(ARGV, first, last))
end
for i = 5 + acks, #ARGV do
  -- XX: a task a sweep has already put back stays put back
  redis.call('ZADD', KEYS[3], 'XX', now, ARGV[i])
end
local taken = {}
for _ = 1, tonumber(ARGV[2]) do
  local raw = redis.call('RPOP', KEYS[1])
  if not raw then break end
  local ok, envelope = pcall(cjson.decode, raw)
  local tag = ok and type(envelope) == 'table' and type(envelope.properties) == 'table'
    and envelope.properties.delivery_tag
  if type(tag) == 'string' and tag ~= '' then
    redis.call('ZADD', KEYS[3], now, tag)
    -- kombu's entry: [message, exchange, routing key]; the default exchange and this queue
    -- send a restored message back to the list it came from
    redis.call('HSET', KEYS[2], tag, '[' .. raw .. ',"",' .. routing .. ']')
  else
    tag = ''
  end
  taken[#taken + 1] = tag
  taken[#taken + 1] = raw
end
return taken
