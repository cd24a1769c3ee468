-- ARGV: lease prefix, now, annotator, n, n_eval, ttl, lease id, project, n_gold, pool. Ends the
-- project's expired holds (1000 leases at most: the sweep ends the rest), then takes up to n
-- items. Pool 'main': up to n_gold gold items (only beside another item), n_eval from the
-- evaluation pool, then the ranked queue's items still in the pool, then pool order, then the
-- evaluation pool; gold items are placed among the pool-order ones (base.mix_gold). Pool
-- 'review': the review pool in order. Returns exhausted ('1': nothing taken and nothing left for
-- this annotator), the expiry, then item id, reasons ('' in pool order), document and state per item.
if redis.call('HEXISTS', K.projects, ARGV[8]) == 0 then  -- before anything is written
  return redis.error_reply('NOTFOUND unknown project ' .. ARGV[8])
end
local now, now_text = lease_clock(ARGV[2])
local who, n, n_eval, lid = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[7]
local n_gold, review = tonumber(ARGV[9]), ARGV[10] == 'review'
local expires = string.format('%.17g', now + tonumber(ARGV[6]))
reclaim(now_text, 1000)
local picked, order = {}, {}
-- walk a sorted set in growing windows; skip what this annotator answered or holds
-- (an item taken in pool order gets empty reasons: rules.REASONS by its pool)
local function take(key, limit)
  local out = {}
  if limit <= 0 then return out end
  local start, window, from_queue = 0, limit, key == K.queue
  while true do
    local chunk = redis.call('ZRANGE', key, start, start + window - 1)
    if #chunk == 0 then return out end
    local m = marks(chunk, who)
    local answered = redis.call('SMISMEMBER', K.answered, unpack(m))
    local held = redis.call('HMGET', K.holds, unpack(m))
    local open = from_queue and redis.call('ZMSCORE', K.pool, unpack(chunk))
    for i, item in ipairs(chunk) do
      if not picked[item] and answered[i] == 0 and not held[i] and (not from_queue or open[i]) then
        picked[item] = from_queue and redis.call('HGET', K.reasons, item) or ''
        out[#out + 1] = item
        if #out >= limit then return out end
      end
    end
    start, window = start + window, math.min(window * 2, 1024)
  end
end
local function append(items) for _, item in ipairs(items) do order[#order + 1] = item end end
if review then
  order = take(K.reviewpool, n)
else
  local gold = take(K.goldpool, math.min(n_gold, n))
  append(take(K.evalpool, math.min(n_eval, n - #gold)))
  append(take(K.queue, n - #gold - #order))
  local start, rest = #order, n - #gold - #order
  if rest <= 0 and #gold > 0 and #order == 0 then rest = 1 end  -- is any other item left?
  append(take(K.pool, rest))
  local stop = #order
  append(take(K.evalpool, rest - (stop - start)))
  if #order > 0 then
    while #order > n - #gold do table.remove(order) end
    stop = math.min(stop, #order)
    for _, g in ipairs(gold) do
      local h = tonumber(string.sub(redis.sha1hex(lid .. SEP .. g), 1, 8), 16)
      table.insert(order, start + h % (stop - start + 1) + 1, g)
      stop = stop + 1
    end
  end
end
if #order == 0 then
  -- nothing open is left for them; only a live hold on an item they have not answered may come back
  for _, m in ipairs(redis.call('HKEYS', K.holds)) do
    local item = head(m)
    if redis.call('SISMEMBER', K.answered, item .. SEP .. who) == 0
        and (split(redis.call('HGET', K.state, item))[4] == 'review') == review then
      return {'0', expires}
    end
  end
  return {'1', expires}
end
local reasons = {}
for i, item in ipairs(order) do reasons[i] = picked[item] end
local states = change_holds(order, who, 1, lid)
redis.call('HSET', lkey(lid), 'project', ARGV[8], 'annotator', who, 'created_at', now_text,
           'items', table.concat(order, SEP), 'reasons', table.concat(reasons, SEP))
redis.call('EXPIRE', lkey(lid), math.ceil(tonumber(ARGV[6])) + 86400)
redis.call('ZADD', K.leasing, expires, lid)
local docs = redis.call('HMGET', K.items, unpack(order))
local out = {'0', expires}
for i, item in ipairs(order) do
  out[#out + 1] = item
  out[#out + 1] = picked[item]
  out[#out + 1] = docs[i]
  out[#out + 1] = states[i]
end
return out
