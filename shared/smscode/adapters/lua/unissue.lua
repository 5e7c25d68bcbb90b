-- Undo an accepted send whose message could not be queued, so the phone keeps its slot.
-- KEYS as in issue.lua.  ARGV[1] message id.
-- Only undoes what this message wrote: a newer send for the phone is left alone.
-- Returns 1 when undone, 0 when the code was no longer this message's.
-- Pumping: the send is taken out of its block's window, its network's counts
-- and the hour's stats too (a queue outage must not make a block look pumped); KEYS and ARGV
-- as issue.lua's last ones (lib_pumping.lua, prepended).
if redis.call('HGET', KEYS[1], 'mid') ~= ARGV[1] then return 0 end
local sent = redis.call('HMGET', KEYS[1], 'pn', 'pe', 'pc')
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
for i = 3, 6 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
redis.call('DEL', KEYS[7])
-- ---- pumping: undo count_send() of issue.lua ----
uncount_send(pumping_send(), sent)
-- ---- end pumping ----
return 1
