-- wrk script: POST /codes with a new phone per request, one phone repeated, or hello world;
-- or POST /codes/verify with a new phone per request ("verify": a wrong guess, one script call).
-- args: mode ("new" | "same" | "hello" | "verify"), base (an 11-digit 139 number)
-- "new" gives each wrk thread its own block of a million numbers above `base`, so no phone
-- repeats within a run; the caller moves `base` between runs. done() prints one JSON line.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "hello"
  base = tonumber(args[2] or "13900000000")
  counter = 0
  statuses = {}
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local phone = base
  if mode == "new" or mode == "verify" then
    counter = counter + 1
    phone = base + id * 1000000 + counter
  end
  local path = "/codes"
  if mode == "hello" then path = "/" end
  if mode == "verify" then
    return wrk.format("POST", "/codes/verify", nil,
      string.format('{"phone":"%.0f","code":"000000"}', phone))
  end
  return wrk.format("POST", path, nil, string.format('{"phone":"%.0f"}', phone))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
