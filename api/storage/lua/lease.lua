-- ARGV: lease prefix, now, annotator, n, n_eval, ttl, lease id, project. Ends the project's expired holds
-- (1000 leases at most: the sweep ends the rest), then takes up to n items: n_eval from the
-- evaluation pool, then the ranked queue's items still in the pool, then pool order, then the
-- evaluation pool. Returns exhausted ('1': nothing taken and nothing left for this annotator),
-- the expiry, then item id, reasons, item document and position record per item taken.
if redis.call('HEXISTS', K.projects, ARGV[8]) == 0 then
  return redis.error_reply('NOTFOUND unknown project ' .. ARGV[8])
end
local now, now_text = lease_clock(ARGV[2])
local who, n, n_eval, lid = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[7]
local expires = string.format('%.17g', now + tonumber(ARGV[6]))
reclaim(now_text, 1000)
local picked, order = {}, {}
-- walk a sorted set in growing windows; skip what this annotator answered or holds
local function take(key, limit, ev, from_queue)
  if limit <= 0 then return end
  local added, start, window = 0, 0, limit
  local default = ev and '{"strategy":"evaluation_slice"}' or '{"strategy":"pool_order"}'
  while true do
    local chunk = redis.call('ZRANGE', key, start, start + window - 1)
    if #chunk == 0 then return end
    local m = marks(chunk, who)
    local answered = redis.call('SMISMEMBER', K.answered, unpack(m))
    local held = redis.call('HMGET', K.holds, unpack(m))
    local open = from_queue and redis.call('ZMSCORE', K.pool, unpack(chunk))
    for i, item in ipairs(chunk) do
      if not picked[item] and answered[i] == 0 and not held[i] and (not from_queue or open[i]) then
        picked[item] = from_queue and redis.call('HGET', K.reasons, item) or default
        order[#order + 1] = item
        added = added + 1
        if added >= limit then return end
      end
    end
    start, window = start + window, math.min(window * 2, 1024)
  end
end
take(K.evalpool, math.min(n_eval, n), true, false)
take(K.queue, n - #order, false, true)
take(K.pool, n - #order, false, false)
take(K.evalpool, n - #order, true, false)
if #order == 0 then
  -- nothing open is left for them; only a live hold on an item they have not answered may come back
  for _, m in ipairs(redis.call('HKEYS', K.holds)) do
    if redis.call('SISMEMBER', K.answered, head(m) .. SEP .. who) == 0 then return {'0', expires} end
  end
  return {'1', expires}
end
local reasons = {}
for i, item in ipairs(order) do reasons[i] = picked[item] end
change_holds(order, who, 1, lid)
redis.call('HSET', lkey(lid), 'project', ARGV[8], 'annotator', who, 'created_at', now_text,
           'items', table.concat(order, SEP), 'reasons', table.concat(reasons, SEP))
redis.call('EXPIRE', lkey(lid), math.ceil(tonumber(ARGV[6])) + 86400)
redis.call('ZADD', K.leasing, expires, lid)
local docs = redis.call('HMGET', K.items, unpack(order))
local pos = redis.call('HMGET', K.pos, unpack(order))
local out = {'0', expires}
for i, item in ipairs(order) do
  out[#out + 1] = item
  out[#out + 1] = picked[item]
  out[#out + 1] = docs[i]
  out[#out + 1] = pos[i]
end
return out
