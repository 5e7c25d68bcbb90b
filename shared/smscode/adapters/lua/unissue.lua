-- Undo an accepted send whose message could not be queued, so the phone keeps its slot.
-- KEYS as in issue.lua.  ARGV[1] message id.
-- Only undoes what this message wrote: a newer send for the phone is left alone.
-- Returns 1 when undone, 0 when the code was no longer this message's.
-- Pumping (issue 19): the send is taken out of its block's window and the hour's stats too
-- (a queue outage must not make a block look pumped); KEYS and ARGV as issue.lua's last ones.
if redis.call('HGET', KEYS[1], 'mid') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
for i = 3, 6 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
redis.call('DEL', KEYS[7])
-- ---- pumping: undo p_count() of issue.lua ----
local pk, pa = #KEYS - 6, #ARGV - 8
local block = ARGV[pa + 1]
if ARGV[pa + 2] == '1' then
  local bucket = math.floor(tonumber(ARGV[pa + 8]) / 1000 / tonumber(ARGV[pa + 5]))
  local window = KEYS[pk + 1]
  local left = redis.call('HINCRBY', window, 's' .. bucket, -1)
  if left <= 0 then redis.call('HDEL', window, 's' .. bucket) end
  if left >= 0 then redis.call('HINCRBY', window, 'S', -1) end  -- it was this bucket's
end
if tonumber(redis.call('HGET', KEYS[pk + 4], 'sends') or '0') > 0 then
  redis.call('HINCRBY', KEYS[pk + 4], 'sends', -1)
end
if tonumber(redis.call('ZSCORE', KEYS[pk + 5], block) or '0') > 0 then
  redis.call('ZINCRBY', KEYS[pk + 5], -1, block)
end
-- ---- end pumping ----
return 1
