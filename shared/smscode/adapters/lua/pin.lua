-- Pin a message to the provider about to be called, so that after an ambiguous answer (or a
-- worker killed mid-call) every later attempt, on any worker, goes to the same provider and
-- never to another. Fenced: only the worker whose token holds the delivery lease may pin,
-- and only over the pin it last saw (compare-and-set), so a worker whose lease lapsed
-- mid-call can never move a message another worker has taken over.
-- KEYS[1] the message's pin  KEYS[2] the message's delivery lease
-- ARGV[1] provider name  ARGV[2] lease token  ARGV[3] the provider the pin names now ('' if
-- none)  ARGV[4] ttl (s)
-- Returns 1 when pinned (stamped with Redis's clock), 0 when the lease is not ours or the
-- pin moved (the caller must not call the provider). Needs lib_pins.lua.
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local pin = redis.call('GET', KEYS[1])
if (pin and pin_provider(pin) or '') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], pin_value(ARGV[1], clock_ms()), 'EX', ARGV[4])
return 1
