-- Forget a message's pin: the provider it names surely did not send it (it refused, or was
-- never called). Fenced like pin.lua: only while this worker's token holds the lease.
-- KEYS[1] the message's pin  KEYS[2] the message's delivery lease
-- ARGV[1] lease token  ARGV[2] the provider the pin must name
-- Returns 1 when dropped, else 0. Needs lib_pins.lua.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local pin = redis.call('GET', KEYS[1])
if not pin or pin_provider(pin) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
