-- Store a test phone's fixed code (TEST_PHONES): no cap is checked or counted, nothing is sent.
-- KEYS[1] code hash  KEYS[2] request state hash
-- ARGV[1] code hmac  ARGV[2] message id  ARGV[3] request id  ARGV[4] code ttl (s)
-- ARGV[5] masked phone  ARGV[6] now (ms)
-- Returns 1. The request is recorded as 'skipped': no SMS leaves for a test phone.
local ttl = tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'mid', ARGV[2], 'rid', ARGV[3], 'n', 0)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], 'state', 'skipped', 'phone', ARGV[5], 'mid', ARGV[2], 'updated', ARGV[6])
redis.call('EXPIRE', KEYS[2], ttl)
return 1
