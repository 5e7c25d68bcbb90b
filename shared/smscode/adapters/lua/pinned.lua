-- A message's pin and Redis's clock now, so its age is measured on the clock that stamped it.
-- KEYS[1] the message's pin
-- Returns {pin or nil, now (ms)}. Needs lib_pins.lua.
return {redis.call('GET', KEYS[1]), clock_ms()}
