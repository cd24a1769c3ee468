-- ARGV: lease prefix, now. Returns total, open (of main and eval), leased, done, flagged, eval,
-- gold, review. Open: in its pool, or held with fewer answers than it requires; leased: live
-- holds (less those of expired leases).
local open, held = {}, {}
for name, key in pairs(POOL) do open[name] = redis.call('ZCARD', key) end
for _, m in ipairs(redis.call('HKEYS', K.holds)) do held[head(m)] = true end
for item in pairs(held) do
  local f = split(redis.call('HGET', K.state, item))
  if not redis.call('ZSCORE', POOL[f[4]], item) and redis.call('SISMEMBER', K.flagged, item) == 0
      and tonumber(f[7]) < tonumber(f[6]) then
    open[f[4]] = open[f[4]] + 1
  end
end
local leased = redis.call('HLEN', K.holds)
for _, lid in ipairs(redis.call('ZRANGEBYSCORE', K.leasing, '-inf', ARGV[2])) do
  leased = leased - #holds_of(lid)
end
local total, flagged = redis.call('LLEN', K.seq), redis.call('SCARD', K.flagged)
local done = total - open.main - open.eval - open.gold - open.review - flagged
return {total, open.main + open.eval, leased, done, flagged, redis.call('SCARD', K.evalset),
        open.gold, open.review}
