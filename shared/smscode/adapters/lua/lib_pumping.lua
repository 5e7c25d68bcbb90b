-- Prepended at load (redis_client.load_script) to issue.lua, unissue.lua, verify.lua and
-- verification_check.lua: the pumping rule's counts per number block and per client network.
--
-- A block's window hash: s<bucket> sends, v<bucket> verified, and their totals S and V over
-- the buckets from o on. A send enters it only while its client network has put fewer than
-- `per_network` sends there (that many is ceil(PUMPING_MIN_SENDS / PUMPING_MIN_NETWORKS)),
-- so a block is refused for everyone only on sends from several networks; V counts the
-- verified codes of the sends that entered.
-- A block's networks, one hash per window-long epoch: s:<net> sends, v:<net> verified and
-- c:<net> sends that entered the block's window. A network's conversion is read as this
-- epoch's counts plus the previous epoch's weighed by the share of it the sliding window
-- still covers (an estimate, exact for evenly spread traffic), and a network that alone
-- fails the rule is refused that block alone.
-- A code remembers its send's network (pn), epoch (pe) and whether it entered the window
-- (pc), so that its verification is counted where its send was.
-- mode: 'judge' (judged and counted), 'stats' (allow-listed: the dashboard's counts only)
-- or 'none' (a test phone: not counted at all).

-- The send-side view of the last 9 KEYS and 11 ARGV of issue.lua and unissue.lua: the block's
-- window, blocked blocks (zset, until ms), why each refusal (hash), this hour's stats hash,
-- this hour's sends and fraud refusals per block (zsets), the block's networks this epoch
-- and the epoch before, networks refused one block (zset of '<block> <net>', until ms);
-- block, mode, min sends, min conversion, bucket (s), buckets per window, block (s),
-- now (ms), the client's network, per_network, window (ms).
local function pumping_send()
  local k, a = #KEYS - 9, #ARGV - 11
  local now, bucket_s = tonumber(ARGV[a + 8]), tonumber(ARGV[a + 5])
  local window_ms = tonumber(ARGV[a + 11])
  return {
    window = KEYS[k + 1], blocked = KEYS[k + 2], details = KEYS[k + 3], hour = KEYS[k + 4],
    hour_sends = KEYS[k + 5], hour_refused = KEYS[k + 6], nets = KEYS[k + 7],
    prev = KEYS[k + 8], net_blocked = KEYS[k + 9],
    block = ARGV[a + 1], judge = ARGV[a + 2] == 'judge', min_sends = tonumber(ARGV[a + 3]),
    min_conversion = tonumber(ARGV[a + 4]), bucket_s = bucket_s,
    buckets = tonumber(ARGV[a + 6]), block_s = tonumber(ARGV[a + 7]), now = now,
    net = ARGV[a + 9], per_network = tonumber(ARGV[a + 10]), window_ms = window_ms,
    bucket = math.floor(now / 1000 / bucket_s), epoch = math.floor(now / window_ms),
  }
end

-- The verify-side view of 5 KEYS from KEYS[k] and 6 ARGV from ARGV[a]: the block's window,
-- this hour's stats hash, this hour's verified per block (zset), the block's networks this
-- epoch and the epoch before; block, mode, bucket (s), buckets per window, now (ms), window (ms).
local function pumping_verify(k, a)
  local now, window_ms = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  return {
    window = KEYS[k], stats = KEYS[k + 1], verified = KEYS[k + 2], nets = KEYS[k + 3],
    prev = KEYS[k + 4], block = ARGV[a], mode = ARGV[a + 1], bucket_s = tonumber(ARGV[a + 2]),
    buckets = tonumber(ARGV[a + 3]), now = now, window_ms = window_ms,
    epoch = math.floor(now / window_ms),
  }
end

local function p_number(value) return tonumber(value or '0') end

local function p_expire_window(P)
  redis.call('PEXPIRE', P.window, 1000 * P.bucket_s * (P.buckets + 1))
end

-- The block's window totals, slid to now: buckets older than the window leave S and V as
-- they leave the hash, so a send costs the same however busy its block is.
local function p_slide(P)
  local oldest = P.bucket - P.buckets + 1
  local w = redis.call('HMGET', P.window, 'o', 'S', 'V')
  local o, sends, verified = tonumber(w[1]), p_number(w[2]), p_number(w[3])
  if o ~= nil and o < oldest then
    local drop = {}
    if oldest - o > P.buckets then  -- idle for longer than a window: recount what is left
      sends, verified = 0, 0
      local fields = redis.call('HGETALL', P.window)
      for i = 1, #fields, 2 do
        local b = tonumber(string.sub(fields[i], 2))  -- nil for o, S, V
        if b ~= nil and b < oldest then
          drop[#drop + 1] = fields[i]
        elseif b ~= nil and string.byte(fields[i]) == 115 then  -- 's'
          sends = sends + tonumber(fields[i + 1])
        elseif b ~= nil then
          verified = verified + tonumber(fields[i + 1])
        end
      end
    else
      for b = o, oldest - 1 do
        local gone = redis.call('HMGET', P.window, 's' .. b, 'v' .. b)
        sends = sends - p_number(gone[1])
        verified = verified - p_number(gone[2])
        drop[#drop + 1], drop[#drop + 2] = 's' .. b, 'v' .. b
      end
    end
    if #drop > 0 then redis.call('HDEL', P.window, unpack(drop)) end
  end
  if o == nil or o < oldest then
    redis.call('HSET', P.window, 'o', oldest, 'S', sends, 'V', verified)
    p_expire_window(P)  -- a send refused by a cap next must not leave it forever
  end
  return sends, verified
end

-- This network's sends and verified, slid to now, and the sends it has entered into the
-- block's window: this epoch's and the last one's in full, as any send still in the window
-- is one or the other, so a network never has more than per_network sends there.
local function p_network(P)
  local weight = 1 - (P.now % P.window_ms) / P.window_ms
  local fields = {'s:' .. P.net, 'v:' .. P.net, 'c:' .. P.net}
  local this = redis.call('HMGET', P.nets, unpack(fields))
  local before = redis.call('HMGET', P.prev, unpack(fields))
  local function slid(i) return p_number(this[i]) + weight * p_number(before[i]) end
  return slid(1), slid(2), p_number(this[3]) + p_number(before[3])
end

local function p_fails(P, sends, verified)
  return sends >= P.min_sends and verified < P.min_conversion * sends
end

-- Refuses {0, 'fraud_suspected', retry_after, new, sends, verified, scope}; new = 1 when this
-- call made the refusal, scope 'block' (everyone) or 'network' (this client network).
local function p_refuse(P, until_ms, new, sends, verified, scope)
  redis.call('ZINCRBY', P.hour_refused, 1, P.block)
  if redis.call('HINCRBY', P.hour, 'refused', 1) == 1 then  -- the hour's first: keep it 25 h
    redis.call('EXPIRE', P.hour, 90000)
    redis.call('EXPIRE', P.hour_refused, 90000)
  end
  local rounded = function(x) return math.floor(x + 0.5) end
  return {0, 'fraud_suspected', math.ceil((until_ms - P.now) / 1000), new,
          rounded(sends), rounded(verified), scope}
end

-- Judge a send before any cap is counted: a refusal (see p_refuse), or nil and how many
-- sends the client's network has entered into the block's window.
local function judge_send(P)
  if not P.judge then return nil, 0 end
  local member = P.block .. ' ' .. P.net
  local until_ms = p_number(redis.call('ZSCORE', P.blocked, P.block))
  if until_ms > P.now then return p_refuse(P, until_ms, 0, 0, 0, 'block'), 0 end
  until_ms = p_number(redis.call('ZSCORE', P.net_blocked, member))
  if until_ms > P.now then return p_refuse(P, until_ms, 0, 0, 0, 'network'), 0 end
  until_ms = P.now + 1000 * P.block_s
  local sends, verified = p_slide(P)
  if p_fails(P, sends, verified) then
    redis.call('ZADD', P.blocked, until_ms, P.block)
    redis.call('HSET', P.details, P.block, 'auto:' .. sends .. ':' .. verified)
    return p_refuse(P, until_ms, 1, sends, verified, 'block'), 0
  end
  local net_sends, net_verified, entered = p_network(P)
  if p_fails(P, net_sends, net_verified) then
    -- ended refusals leave as new ones come (a few each), so the set stays as small as
    -- the refusals in force
    local ended = redis.call('ZRANGEBYSCORE', P.net_blocked, '-inf', P.now, 'LIMIT', 0, 8)
    if #ended > 0 then
      redis.call('ZREM', P.net_blocked, unpack(ended))
      redis.call('HDEL', P.details, unpack(ended))
    end
    redis.call('ZADD', P.net_blocked, until_ms, member)
    redis.call('HSET', P.details, member,
      'network:' .. math.floor(net_sends + 0.5) .. ':' .. math.floor(net_verified + 0.5))
    return p_refuse(P, until_ms, 1, net_sends, net_verified, 'network'), 0
  end
  return nil, entered
end

-- Count an accepted send (its code hash `code` just written) after judge_send.
local function count_send(P, code, entered)
  if P.judge then
    local counts = entered < P.per_network
    if counts then
      redis.call('HINCRBY', P.window, 's' .. P.bucket, 1)
      redis.call('HINCRBY', P.window, 'S', 1)
      redis.call('HINCRBY', P.nets, 'c:' .. P.net, 1)
    end
    p_expire_window(P)
    redis.call('HINCRBY', P.nets, 's:' .. P.net, 1)
    redis.call('PEXPIRE', P.nets, 2 * P.window_ms)  -- read as the previous epoch next
    redis.call('HSET', code, 'pn', P.net, 'pe', P.epoch, 'pc', counts and '1' or '0')
  end
  redis.call('ZINCRBY', P.hour_sends, 1, P.block)
  if redis.call('HINCRBY', P.hour, 'sends', 1) == 1 then
    redis.call('EXPIRE', P.hour, 90000)
    redis.call('EXPIRE', P.hour_sends, 90000)
  end
end

-- The networks hash an epoch's counts are in, or nil when it has left the sliding window.
local function p_epoch_key(P, epoch)
  if epoch == P.epoch then return P.nets end
  if epoch == P.epoch - 1 then return P.prev end
  return nil
end

local function p_decrement(key, field)
  if p_number(redis.call('HGET', key, field)) > 0 then redis.call('HINCRBY', key, field, -1) end
end

-- Take back count_send for a send that could not be queued; `sent` = HMGET of its code's
-- pn, pe, pc (nil fields for a code from before networks were counted).
local function uncount_send(P, sent)
  if P.judge then
    if sent[3] ~= '0' then
      local left = redis.call('HINCRBY', P.window, 's' .. P.bucket, -1)
      if left <= 0 then redis.call('HDEL', P.window, 's' .. P.bucket) end
      if left >= 0 then redis.call('HINCRBY', P.window, 'S', -1) end  -- it was this bucket's
    end
    local nets = sent[1] and p_epoch_key(P, tonumber(sent[2]))
    if nets then
      p_decrement(nets, 's:' .. sent[1])
      if sent[3] == '1' then p_decrement(nets, 'c:' .. sent[1]) end
    end
  end
  p_decrement(P.hour, 'sends')
  if p_number(redis.call('ZSCORE', P.hour_sends, P.block)) > 0 then
    redis.call('ZINCRBY', P.hour_sends, -1, P.block)
  end
end

-- One verified code (`sent` = HMGET of its pn, pe, pc), for its block's window, its send's
-- network and this hour's stats.
local function count_verified(P, sent)
  if P.mode == 'none' then return end
  if P.mode == 'judge' then
    local bucket = math.floor(P.now / 1000 / P.bucket_s)
    if sent[3] ~= '0' then
      redis.call('HINCRBY', P.window, 'v' .. bucket, 1)
      redis.call('HINCRBY', P.window, 'V', 1)
      p_expire_window(P)
    end
    local nets = sent[1] and p_epoch_key(P, tonumber(sent[2]))
    if nets and redis.call('HEXISTS', nets, 's:' .. sent[1]) == 1 then
      redis.call('HINCRBY', nets, 'v:' .. sent[1], 1)
    end
  end
  redis.call('ZINCRBY', P.verified, 1, P.block)
  if redis.call('HINCRBY', P.stats, 'verified', 1) == 1 then  -- the hour's first: keep it 25 h
    redis.call('EXPIRE', P.stats, 90000)
    redis.call('EXPIRE', P.verified, 90000)
  end
end

