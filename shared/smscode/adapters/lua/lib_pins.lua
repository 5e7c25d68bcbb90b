-- A message's pin names the provider it may have gone to, and when: "provider:ms".
local function pin_value(provider, now)
  return provider .. ':' .. now
end

-- Whether a message's pin ("provider:ms", or false when there is none) names a provider
-- outside `listed` (comma-separated): that provider may have sent the code, so no other may.
local function pinned_elsewhere(pin, listed)
  if not pin then return false end
  local name = string.match(pin, '^(.*):%d+$') or pin
  return not string.find(',' .. listed .. ',', ',' .. name .. ',', 1, true)
end
