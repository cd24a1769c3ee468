-- Shared by the lease scripts. Before this, api.storage.redis_common defines K: the project's
-- keys by name (K.pool, K.holds, ...: api.storage.keys.PROJECT), K.clock (the lease clock) and
-- K.projects (the projects hash). ARGV[1] is the prefix of lease keys.
-- An item's state is state[item] = seq, is_eval, rand_key, pool, pool_key, required, answers,
-- holds (fields joined by SEP). A hold is holds[item SEP annotator] = lease id; it is live while
-- its lease's score in `leasing` (its expiry) is later than now.
local SEP = '\31'
local POOL = {main = K.pool, eval = K.evalpool, gold = K.goldpool, review = K.reviewpool}
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
local function marks(items, who)
  local out = {}
  for i, item in ipairs(items) do out[i] = item .. SEP .. who end
  return out
end
-- the time a lease or a sweep runs at: `t`, or the latest time one ran at if that is later
local function lease_clock(t)
  local last = redis.call('GET', K.clock)
  if last and tonumber(last) >= tonumber(t) then return tonumber(last), last end
  redis.call('SET', K.clock, t)
  return tonumber(t), t
end
local function live(lid, now)
  local expires = redis.call('ZSCORE', K.leasing, lid)
  return expires and tonumber(expires) > now
end
-- change the state of each of the distinct `items` with edit(fields, item) (nil: no change),
-- then put it in its pool while it has room for another answer, else take it out. Returns the
-- states, as stored
local function update(items, edit)
  local out = {}
  for from = 1, #items, 1000 do  -- one call takes a few thousand values at most
    local part = {unpack(items, from, math.min(from + 999, #items))}
    local states = redis.call('HMGET', K.state, unpack(part))
    local flagged = redis.call('SMISMEMBER', K.flagged, unpack(part))
    local set, add, drop = {}, {}, {}
    for i, item in ipairs(part) do
      if states[i] then
        local f = split(states[i])
        if edit then
          edit(f, item)
          states[i] = table.concat(f, SEP)
          table.insert(set, item)
          table.insert(set, states[i])
        end
        local pool = POOL[f[4]]
        add[pool], drop[pool] = add[pool] or {}, drop[pool] or {}
        if flagged[i] == 0 and tonumber(f[7]) + tonumber(f[8]) < tonumber(f[6]) then
          table.insert(add[pool], f[5])
          table.insert(add[pool], item)
        else
          table.insert(drop[pool], item)
        end
      end
      out[from + i - 1] = states[i]
    end
    if #set > 0 then redis.call('HSET', K.state, unpack(set)) end
    for key, args in pairs(add) do if #args > 0 then redis.call('ZADD', key, unpack(args)) end end
    for key, args in pairs(drop) do if #args > 0 then redis.call('ZREM', key, unpack(args)) end end
  end
  return out
end
-- add (+1) or end (-1) `who`'s holds of the distinct `items`; returns their states
local function change_holds(items, who, delta, lid)
  if #items == 0 then return {} end
  local m = marks(items, who)
  if delta > 0 then
    local pairs_ = {}
    for i = 1, #m do pairs_[2 * i - 1], pairs_[2 * i] = m[i], lid end
    redis.call('HSET', K.holds, unpack(pairs_))
  else
    redis.call('HDEL', K.holds, unpack(m))
  end
  return update(items, function(f) f[8] = tonumber(f[8]) + delta end)
end
-- the holds of lease `lid` that still name it: {item, ...}, and its annotator
local function holds_of(lid)
  local f = redis.call('HMGET', lkey(lid), 'items', 'annotator')
  local out = {}
  if not f[1] then return out, f[2] end
  local items = split(f[1])
  local holders = redis.call('HMGET', K.holds, unpack(marks(items, f[2])))
  for i, item in ipairs(items) do
    if holders[i] == lid then out[#out + 1] = item end
  end
  return out, f[2]
end
-- end the holds of at most `most` leases whose expiry is `now_text` or earlier: (holds, more?)
local function reclaim(now_text, most)
  local ended = 0
  local lids = redis.call('ZRANGEBYSCORE', K.leasing, '-inf', now_text, 'LIMIT', 0, most)
  for _, lid in ipairs(lids) do
    local items, who = holds_of(lid)
    change_holds(items, who, -1)
    ended = ended + #items
    redis.call('ZREM', K.leasing, lid)
  end
  return ended, #lids == most
end
