-- Prepended at load to verify.lua and verification_check.lua (redis_client.load_script):
-- one verified send, for its number block's conversion window and this hour's stats.
-- window: the block's window hash (as in issue.lua)  stats: this hour's stats hash
-- verified: this hour's verified per block (zset)  counted: '1' to count it in its window,
-- '0' when allow-listed  bucket_s, buckets: the window's shape  now_ms: the clock
local function count_verified(window, stats, verified, block, counted, bucket_s, buckets, now_ms)
  if counted == '1' then
    local bucket = math.floor(tonumber(now_ms) / 1000 / tonumber(bucket_s))
    redis.call('HINCRBY', window, 'v' .. bucket, 1)
    redis.call('HINCRBY', window, 'V', 1)  -- the window's total (see issue.lua)
    redis.call('PEXPIRE', window, 1000 * tonumber(bucket_s) * (tonumber(buckets) + 1))
  end
  redis.call('ZINCRBY', verified, 1, block)
  if redis.call('HINCRBY', stats, 'verified', 1) == 1 then  -- the hour's first: keep it 25 h
    redis.call('EXPIRE', stats, 90000)
    redis.call('EXPIRE', verified, 90000)
  end
end

