-- A message's pin names the provider it may have gone to, and when: "provider:ms", the time
-- on Redis's own clock, so every worker measures from the same instant.
local function pin_value(provider, now)
  return provider .. ':' .. now
end

-- Redis's clock in ms: the pins' stamps and their ages are read on it, never a worker's.
local function clock_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The provider a pin ("provider:ms") names.
local function pin_provider(pin)
  return string.match(pin, '^(.*):%d+$') or pin
end

-- Whether a message's pin ("provider:ms", or false when there is none) names a provider
-- outside `listed` (comma-separated): that provider may have sent the code, so no other may.
local function pinned_elsewhere(pin, listed)
  if not pin then return false end
  return not string.find(',' .. listed .. ',', ',' .. pin_provider(pin) .. ',', 1, true)
end
