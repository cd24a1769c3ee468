-- Shared by the lease scripts. Before this, api.storage.redis_scripts defines K: the project's
-- keys by name (K.pool, K.holds, ...: api.storage.keys.PROJECT), K.clock (the lease clock) and
-- K.projects (the projects hash).
-- ARGV[1] is the prefix of lease keys. A hold is holds[item SEP annotator] = lease id; it is live
-- while its lease's score in `leasing` (its expiry) is later than now.
local SEP = '\31'
local function lkey(lid) return ARGV[1] .. lid end
local function split(s)
  local out, from = {}, 1
  while true do
    local at = string.find(s, SEP, from, true)
    if not at then out[#out + 1] = string.sub(s, from); return out end
    out[#out + 1] = string.sub(s, from, at - 1)
    from = at + 1
  end
end
local function head(s)
  local at = string.find(s, SEP, 1, true)
  return at and string.sub(s, 1, at - 1) or s
end
local function count(key, field) return tonumber(redis.call('HGET', key, field) or '0') end
-- the time a lease or a sweep runs at: `t`, or the latest time one ran at if that is later
local function lease_clock(t)
  local last = redis.call('GET', K.clock)
  if last and tonumber(last) >= tonumber(t) then return tonumber(last), last end
  redis.call('SET', K.clock, t)
  return tonumber(t), t
end
-- put `item` in its pool while it has room for another answer, else take it out
local function settle(item)
  local pos = redis.call('HGET', K.pos, item)
  if not pos then return end
  local f = split(pos)  -- seq, is_eval, rand_key
  local pool = f[2] == '1' and K.evalpool or K.pool
  local need = tonumber(redis.call('HGET', K.required, item) or '1')
  if count(K.nlabels, item) + count(K.nholds, item) < need
      and redis.call('SISMEMBER', K.flagged, item) == 0 then
    redis.call('ZADD', pool, f[3], item)
  else
    redis.call('ZREM', pool, item)
  end
end
local function live(lid, now)
  local expires = redis.call('ZSCORE', K.leasing, lid)
  return expires and tonumber(expires) > now
end
local function end_hold(item, who)
  redis.call('HDEL', K.holds, item .. SEP .. who)
  if redis.call('HINCRBY', K.nholds, item, -1) <= 0 then redis.call('HDEL', K.nholds, item) end
  settle(item)
end
-- the holds of lease `lid` that still name it: {item, ...}, and its annotator
local function holds_of(lid)
  local f = redis.call('HMGET', lkey(lid), 'items', 'annotator')
  local out = {}
  if not f[1] then return out, f[2] end
  for _, item in ipairs(split(f[1])) do
    if redis.call('HGET', K.holds, item .. SEP .. f[2]) == lid then out[#out + 1] = item end
  end
  return out, f[2]
end
-- end the holds of at most `most` leases whose expiry is `now_text` or earlier: (holds, more?)
local function reclaim(now_text, most)
  local ended = 0
  local lids = redis.call('ZRANGEBYSCORE', K.leasing, '-inf', now_text, 'LIMIT', 0, most)
  for _, lid in ipairs(lids) do
    local items, who = holds_of(lid)
    for _, item in ipairs(items) do end_hold(item, who) end
    ended = ended + #items
    redis.call('ZREM', K.leasing, lid)
  end
  return ended, #lids == most
end
