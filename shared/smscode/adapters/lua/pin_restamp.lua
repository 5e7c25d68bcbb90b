-- An ambiguous answer came back: stamp the message's pin with Redis's clock now, so that the
-- wait before looking in the provider's records runs from the answer, not from before the
-- call. Unfenced on purpose: a later stamp only makes every worker wait longer.
-- KEYS[1] the message's pin  ARGV[1] the provider it must still name
-- Returns 1 when re-stamped, 0 when the pin is gone or names another provider.
-- Needs lib_pins.lua.
local pin = redis.call('GET', KEYS[1])
if not pin or pin_provider(pin) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], pin_value(ARGV[1], clock_ms()), 'KEEPTTL')
return 1
