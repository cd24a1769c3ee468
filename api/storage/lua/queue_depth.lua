-- ARGV: lease prefix, now. Returns total, open, leased, done, flagged, eval. Open: in a pool, or
-- held with fewer labels than it requires; leased: live holds (less those of expired leases).
local now = tonumber(ARGV[2])
local flagged = redis.call('SCARD', K.flagged)
local open = redis.call('ZCARD', K.pool) + redis.call('ZCARD', K.evalpool)
for _, item in ipairs(redis.call('HKEYS', K.nholds)) do
  if not redis.call('ZSCORE', K.pool, item) and not redis.call('ZSCORE', K.evalpool, item)
      and redis.call('SISMEMBER', K.flagged, item) == 0
      and count(K.nlabels, item) < tonumber(redis.call('HGET', K.required, item) or '1') then
    open = open + 1
  end
end
local leased = redis.call('HLEN', K.holds)
for _, lid in ipairs(redis.call('ZRANGEBYSCORE', K.leasing, '-inf', ARGV[2])) do
  leased = leased - #holds_of(lid)
end
local total = redis.call('LLEN', K.seq)
return {total, open, leased, total - open - flagged, flagged, redis.call('SCARD', K.evalset)}
