-- KEYS: lock, fence; ARGV: owner, token, new expires, ttl in ms. Extends the hold while the token
-- is the latest handed out (nobody took the lock since), even if Redis already dropped the key.
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) ~= ARGV[1] .. "\31" then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. "\31" .. ARGV[3], 'PX', ARGV[4])
return 1
