-- Pin a message to the provider about to be called, while its delivery lease is held, so
-- that after an ambiguous answer (or a worker killed mid-call) every later attempt, on any
-- worker, goes to the same provider and never to another.
-- KEYS[1] the message's pin  KEYS[2] the message's delivery lease
-- ARGV[1] provider name  ARGV[2] now (ms)  ARGV[3] ttl (s)
-- Returns 1 when pinned, 0 when the lease is gone (the caller must not call the provider).
-- Needs lib_pins.lua.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[1], pin_value(ARGV[1], ARGV[2]), 'EX', ARGV[3])
return 1
