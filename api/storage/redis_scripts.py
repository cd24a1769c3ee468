"""Lua scripts behind the Redis store's atomic operations.

Each script runs atomically on the server. Keys are built inside the scripts from the namespace
(``ARGV[1]``) the same way :mod:`api.storage.keys` builds them, so this store targets a single
Redis server (or a primary with replicas), not Redis Cluster. Item and annotation JSON is produced
by Python and stored as opaque strings, never re-encoded by Lua (whose JSON encoder rounds floats).

``pos`` entries are ``seq SEP is_eval SEP rand_key``. The lease's hash lists its items once
(``items``, and their pool keys and evaluation flags: ``keys``, ``evals``), and ``leasing`` scores
the lease by its expiry: one entry a lease, from which expiry ends its holds and puts their items
back with no per-item lookup. A hold is one of two kinds, and it is the whole truth of its item's
state in that lease:

- sole: the item had no label and no other holder, and this hold fills it (it needs one answer),
  so it left its pool and no other lease can see it. The hold is a ``1`` in the lease's ``sole``
  flags (one per item) and nothing else: open while the flag is ``1``; a submit or release sets it
  to ``0``, and expiry drops the field.
- shared: ``hold[item SEP annotator] = lease SEP expires``, counted per item in ``nholds``; open
  while that entry names the lease. Releases before sole flags read and write only these, and so
  does this one until the namespace's ``lease-format`` is ``2``.

Holds written before ``leasing`` have an entry each in ``held`` (member ``item SEP annotator``),
still ended there.
The pools (``pool``, ``evalpool``) hold the items that are not flagged and whose labels plus live
holds are short of what they require: 1, or ``redundancy_k`` for the share of items
``redundancy_fraction`` draws by id hash (the project's settings, read from its JSON; the draw is
the first 32 bits of ``redis.sha1hex(id)``, as :func:`api.storage.records.redundancy_draw`).
"""

COMMON = r"""
local SEP = "\31"
local ns = ARGV[1]
local function pk(pid, what) return ns .. ':p:{' .. pid .. '}:' .. what end
local function lkey(lid) return ns .. ':lease:' .. lid end
local function litems(lid) return ns .. ':lease:' .. lid .. ':items' end  -- leases before the items field
local function split(s)  -- plain finds: a pattern built and matched per call cost 3 us a split
  local out, from = {}, 1
  while true do
    local at = string.find(s, SEP, from, true)
    if not at then out[#out + 1] = string.sub(s, from); return out end
    out[#out + 1] = string.sub(s, from, at - 1)
    from = at + 1
  end
end
-- the part of `s` before its first separator
local function head(s)
  local at = string.find(s, SEP, 1, true)
  return at and string.sub(s, 1, at - 1) or s
end
-- the project's redundancy settings {fraction, k}, read once per script; nil: no such project
local settings = {}
local function redundancy(pid)
  local c = settings[pid]
  if c == nil then
    local doc = redis.call('HGET', ns .. ':projects', pid)
    if not doc then return nil end
    local s = cjson.decode(doc)['settings'] or {}
    c = {tonumber(s['redundancy_fraction']) or 0, tonumber(s['redundancy_k']) or 1}
    settings[pid] = c
  end
  return c
end
local function required(pid, item)
  local c = redundancy(pid)
  if c == nil or c[1] <= 0 then return 1 end
  if tonumber(string.sub(redis.sha1hex(item), 1, 8), 16) / 4294967296 < c[1] then return c[2] end
  return 1
end
-- put each of `items` in its pool, by its pool order, while it has room for another holder, else
-- take it out; a few calls in all. `nholds`: their live holds, if the caller has them; `keys` and
-- `evs`: their pool keys and evaluation flags ('1' or '0'; false where unknown: read from `pos`)
local function place_all(pid, items, nholds, keys, evs)
  if #items == 0 then return end
  if #items > 2000 then  -- in parts: one call takes at most about 8000 values from Lua
    local function part(t, from)
      if not t then return nil end
      local out = {}
      for i = from, math.min(from + 1999, #items) do out[#out + 1] = t[i] end
      return out
    end
    for from = 1, #items, 2000 do
      place_all(pid, part(items, from), part(nholds, from), part(keys, from), part(evs, from))
    end
    return
  end
  keys, evs = keys or {}, evs or {}
  local unknown = {}
  for i, item in ipairs(items) do
    if not keys[i] then unknown[#unknown + 1] = i end
  end
  if #unknown > 0 then
    local ids = {}
    for j, i in ipairs(unknown) do ids[j] = items[i] end
    local pos = redis.call('HMGET', pk(pid, 'pos'), unpack(ids))
    for j, i in ipairs(unknown) do
      local p = split(pos[j])
      evs[i], keys[i] = p[2], p[3]
    end
  end
  local labels = redis.call('HMGET', pk(pid, 'nlabels'), unpack(items))
  nholds = nholds or redis.call('HMGET', pk(pid, 'nholds'), unpack(items))
  local flagged = redis.call('SMISMEMBER', pk(pid, 'flagged'), unpack(items))
  local add, drop = {}, {}
  for i, item in ipairs(items) do
    local key = pk(pid, evs[i] == '1' and 'evalpool' or 'pool')
    if flagged[i] == 0 and tonumber(labels[i] or 0) + tonumber(nholds[i] or 0) < required(pid, item) then
      add[key] = add[key] or {}
      table.insert(add[key], keys[i])
      table.insert(add[key], item)
    else
      drop[key] = drop[key] or {}
      table.insert(drop[key], item)
    end
  end
  for key, args in pairs(add) do redis.call('ZADD', key, unpack(args)) end
  for key, args in pairs(drop) do redis.call('ZREM', key, unpack(args)) end
end
local function place(pid, item) place_all(pid, {item}) end
-- leases' sole flags, read once per script: lid -> {at = item -> place, flags, annotator, dirty}, or
-- false for a lease with none (written before them, or expired); save_soles writes back changes
local soles = {}
local function sole_of(lid)
  local s = soles[lid]
  if s == nil then
    local f = redis.call('HMGET', lkey(lid), 'sole', 'items', 'annotator')
    s = false
    if f[1] and f[2] then
      s = {at = {}, flags = {}, annotator = f[3], dirty = false}
      for i, it in ipairs(split(f[2])) do s.at[it], s.flags[i] = i, string.sub(f[1], i, i) end
    end
    soles[lid] = s
  end
  return s
end
local function save_soles()
  for lid, s in pairs(soles) do
    if s and s.dirty then redis.call('HSET', lkey(lid), 'sole', table.concat(s.flags)) end
  end
end
-- lease `lid`'s sole hold on `item` for `annotator`, while open: its lease's flags and place in them
local function sole_at(lid, item, annotator)
  local s = sole_of(lid)
  if not s or s.annotator ~= annotator then return nil end
  local i = s.at[item]
  if i and s.flags[i] == '1' then return s, i end
  return nil
end
-- end the hold of `annotator` on `item` if lease `lid` has it (only that holder's slot); true if
-- it did
local function unhold(pid, item, annotator, lid)
  local s, i = sole_at(lid, item, annotator)
  if s then
    s.flags[i], s.dirty = '0', true
    return true
  end
  local m = item .. SEP .. annotator
  local h = redis.call('HGET', pk(pid, 'hold'), m)
  if h and head(h) == lid then
    redis.call('HDEL', pk(pid, 'hold'), m)
    if redis.call('HINCRBY', pk(pid, 'nholds'), item, -1) <= 0 then
      redis.call('HDEL', pk(pid, 'nholds'), item)
    end
    return true
  end
  return false
end
-- The lease clock: a lease or a sweep never runs at a time before one that already ran. Replicas
-- read their own clocks, and a call may wait between reading its clock and running here; without
-- this, a hold ended by one replica's sweep could go to a lease stamped before that hold's end.
-- Returns the time to use, as a number and as the text to compare scores with.
local function lease_clock(t)
  local last = redis.call('GET', ns .. ':clock')
  if last and tonumber(last) >= tonumber(t) then return tonumber(last), last end
  redis.call('SET', ns .. ':clock', t)
  return tonumber(t), t
end
-- lease records live a day past their last expiry, then Redis drops them (a late submit on a
-- forgotten lease is refused like any other); one in `leasing` lives until its expiry ends it
local KEEP_S = 86400
local function keep(lid, expires, now)  -- relative: callers' time need not be the server's clock
  local ttl = math.ceil(tonumber(expires) - tonumber(now)) + KEEP_S
  redis.call('EXPIRE', lkey(lid), ttl)
  return ttl
end
-- the items a lease was given (its hash's `items`; a lease written before that field: its records)
local function lease_items(lid)
  local joined = redis.call('HGET', lkey(lid), 'items')
  if joined then return split(joined) end
  return redis.call('HKEYS', litems(lid))
end
-- whether a hold (`lease SEP expires`) has expired at `now`
local function hold_expired(h, now)
  return tonumber(string.sub(h, string.find(h, SEP, 1, true) + 1)) <= tonumber(now)
end
-- whether lease `lid` still holds `item` for `annotator`
local function holds_it(pid, item, annotator, lid)
  if sole_at(lid, item, annotator) then return true end
  local h = redis.call('HGET', pk(pid, 'hold'), item .. SEP .. annotator)
  return h and head(h) == lid
end
-- the holds lease `lid` gave, as {mark, item, pool key, evaluation flag, sole} (its hash's fields;
-- sole: true while that hold is open and the lease's alone), and whether it has sole flags; none
-- when its hash is gone
local function lease_holds(lid)
  local f = redis.call('HMGET', lkey(lid), 'annotator', 'items', 'keys', 'evals', 'sole')
  local out = {}
  if not f[2] then return out, false end
  local keys = f[3] and split(f[3]) or {}
  for i, item in ipairs(split(f[2])) do
    out[i] = {item .. SEP .. f[1], item, keys[i] or false, f[4] and string.sub(f[4], i, i) or false,
              f[5] and string.sub(f[5], i, i) == '1' or false}
  end
  return out, f[5] ~= false
end
-- which of `holds` (as lease_holds gives them) lease `lid` still has: its open sole holds, and
-- those whose `hold` entry names it (not answered, released or re-leased)
local function live_holds(pid, lid, holds)
  local live, marks, at = {}, {}, {}
  for i, h in ipairs(holds) do
    if h[5] then live[i] = true else marks[#marks + 1], at[#marks + 1] = h[1], i end
  end
  if #marks > 0 then
    local holders = redis.call('HMGET', pk(pid, 'hold'), unpack(marks))
    for j, i in ipairs(at) do live[i] = holders[j] and head(holders[j]) == lid or false end
  end
  return live
end
-- End the holds of project `pid` whose expiry passed, earliest first: those of expired `leasing`
-- entries, lease by lease until at least `most` holds were looked at, and at most `most` older
-- `held` entries; each gives back its holder's slot (a late holder is refused), a few calls per key
-- for all of them. Returns how many holds ended, and whether expired entries may remain.
local function reclaim(pid, now_text, most)
  local leases = redis.call('ZRANGEBYSCORE', pk(pid, 'leasing'), '-inf', now_text, 'LIMIT', 0, most)
  local old = redis.call('ZRANGEBYSCORE', pk(pid, 'held'), '-inf', now_text, 'LIMIT', 0, most)
  if #leases == 0 and #old == 0 then return 0, false end
  -- ended: the `hold` entries to delete; back: per item, the entries among them (a sole hold has none)
  local n, ended, items, back, keys, evs = 0, {}, {}, {}, {}, {}
  local function ends(m, item, key, ev)
    n = n + 1
    if back[item] == nil then
      back[item] = 0
      items[#items + 1], keys[#items + 1], evs[#items + 1] = item, key, ev
    end
    if m then
      ended[#ended + 1] = m
      back[item] = back[item] + 1
    end
  end
  -- whole leases, until `most` holds: every call below stays within Lua's unpack limit
  local looked, given, owners, taken = 0, {}, {}, {}
  for _, lid in ipairs(leases) do
    if looked >= most then break end
    taken[#taken + 1] = lid
    local holds, flagged = lease_holds(lid)
    for _, h in ipairs(holds) do
      looked = looked + 1
      if h[5] then ends(false, h[2], h[3], h[4]) else given[#given + 1], owners[#given + 1] = h, lid end
    end
    if flagged then  -- its sole holds end here
      redis.call('HDEL', lkey(lid), 'sole')
      soles[lid] = nil
    end
    redis.call('EXPIRE', lkey(lid), KEEP_S)
  end
  if #taken > 0 then redis.call('ZREM', pk(pid, 'leasing'), unpack(taken)) end
  if #given > 0 then
    local marks = {}
    for i, h in ipairs(given) do marks[i] = h[1] end
    local holders = redis.call('HMGET', pk(pid, 'hold'), unpack(marks))
    for i, h in ipairs(given) do  -- still this lease's (not answered, released or re-leased)
      if holders[i] and head(holders[i]) == owners[i] then ends(h[1], h[2], h[3], h[4]) end
    end
  end
  local more = #taken < #leases or #leases == most or #old == most
  if #old > 0 then
    redis.call('ZREM', pk(pid, 'held'), unpack(old))
    local holders = redis.call('HMGET', pk(pid, 'hold'), unpack(old))
    for i, m in ipairs(old) do  -- the entry outlives a released hold: the hold must be the one
      if holders[i] and hold_expired(holders[i], now_text) then ends(m, head(m), false, false) end
    end
  end
  if n == 0 then return 0, more end
  if #ended > 0 then redis.call('HDEL', pk(pid, 'hold'), unpack(ended)) end
  -- each ended entry gives its slot back: the counts are read once for all, written where they moved
  local holds, left, zero = redis.call('HMGET', pk(pid, 'nholds'), unpack(items)), {}, {}
  for i, item in ipairs(items) do
    holds[i] = math.max(tonumber(holds[i] or 0) - back[item], 0)
    if back[item] > 0 then
      if holds[i] > 0 then
        left[#left + 1] = item
        left[#left + 1] = holds[i]
      else
        zero[#zero + 1] = item
      end
    end
  end
  if #left > 0 then redis.call('HSET', pk(pid, 'nholds'), unpack(left)) end
  if #zero > 0 then redis.call('HDEL', pk(pid, 'nholds'), unpack(zero)) end
  place_all(pid, items, holds, keys, evs)
  return n, more
end
"""

ADD_ITEMS = COMMON + r"""
-- ARGV: ns, pid, on_conflict, then per item: id, is_eval, rand_key, json
local pid, on_conflict = ARGV[2], ARGV[3]
local existing = 0
for i = 4, #ARGV, 4 do
  if redis.call('HEXISTS', pk(pid, 'items'), ARGV[i]) == 1 then
    existing = existing + 1
    if on_conflict == 'reject' then
      return redis.error_reply('CONFLICT item id ' .. ARGV[i] .. ' already exists')
    end
  end
end
local inserted, updated = 0, 0
for i = 4, #ARGV, 4 do
  local id, is_eval, key, doc = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HEXISTS', pk(pid, 'items'), id) == 1 then
    updated = updated + 1
  else
    local seq = redis.call('RPUSH', pk(pid, 'seq'), id) - 1
    redis.call('HSET', pk(pid, 'pos'), id, seq .. SEP .. is_eval .. SEP .. key)
    if is_eval == '1' then
      redis.call('ZADD', pk(pid, 'evalpool'), key, id)
      redis.call('SADD', pk(pid, 'evalset'), id)
    else
      redis.call('ZADD', pk(pid, 'pool'), key, id)
    end
    inserted = inserted + 1
  end
  redis.call('HSET', pk(pid, 'items'), id, doc)
end
return {inserted, updated}
"""

LEASE = COMMON + r"""
-- A batch of leases, one after the other at one time. ARGV: ns, now, positions ('1' or '0'), then
-- for each lease: pid, annotator, n, n_eval, ttl, lease_id. Returns one reply per lease:
-- {'!', error} when it is refused, else exhausted ('1' when the lease is empty and nothing is left
-- for this annotator), the expiry, then item, reasons, item document and, with positions, its
-- position record (seq and is_eval: not in the lease route's answer) for each leased item.
local now, now_text = lease_clock(ARGV[2])
local positions = ARGV[3] == '1'
-- sole flags once every replica reads them (see RedisStore.upgrade_lease_format)
local sole_ok = redis.call('GET', ns .. ':lease-format') == '2'
local reclaimed = {}
local function lease(pid, annotator, n, n_eval, ttl, lease_id)
  if redundancy(pid) == nil then return {'!', 'NOTFOUND unknown project ' .. pid} end
  local expires = string.format('%.17g', now + tonumber(ttl))
  local picked, order, full = {}, {}, {}
  -- expired holds of this project end first, once a batch (at most 1000, the sweeper ends the rest)
  if not reclaimed[pid] then
    reclaim(pid, now_text, 1000)
    reclaimed[pid] = true
  end
  -- walk a sorted set in growing windows, checked a few calls per window; stop as soon as `limit`
  -- items are taken. The pools hold only items with room for another holder; skip those this annotator
  -- answered or holds, and (after a settings change) those with no room left.
  local function take(key, limit, ev, from_queue)
    if limit <= 0 then return end
    local added, start, window = 0, 0, limit  -- the first window is the batch: the common case
    local default = ev == '1' and '{"strategy":"evaluation_slice"}' or '{"strategy":"pool_order"}'
    while true do
      -- a pool's scores are the items' pool keys; the queue's are ranks (its items' keys are their
      -- scores in the pool, which they must be in)
      local chunk, keys = {}, {}
      if from_queue then
        chunk = redis.call('ZRANGE', key, start, start + window - 1)
      else
        local got = redis.call('ZRANGE', key, start, start + window - 1, 'WITHSCORES')
        for i = 2, #got, 2 do chunk[i / 2], keys[i / 2] = got[i - 1], got[i] end
      end
      if #chunk == 0 then return end
      local marks = {}
      for i, item in ipairs(chunk) do marks[i] = item .. SEP .. annotator end
      local answered = redis.call('SMISMEMBER', pk(pid, 'answered'), unpack(marks))
      local holds = redis.call('HMGET', pk(pid, 'nholds'), unpack(chunk))
      local labels = redis.call('HMGET', pk(pid, 'nlabels'), unpack(chunk))
      if from_queue then keys = redis.call('ZMSCORE', pk(pid, 'pool'), unpack(chunk)) end
      for i, item in ipairs(chunk) do
        if not picked[item] and answered[i] == 0 and keys[i] then
          local h = tonumber(holds[i] or 0)
          local used = h + tonumber(labels[i] or 0)
          if h > 0 and redis.call('HEXISTS', pk(pid, 'hold'), marks[i]) == 1 then  -- theirs already
          elseif used > 0 and used >= required(pid, item) then
            full[#full + 1] = item
          else
            local reasons = from_queue and redis.call('HGET', pk(pid, 'reasons'), item) or false
            picked[item] = {ev, reasons or default, used, h, keys[i]}
            order[#order + 1] = item
            added = added + 1
            if added >= limit then return end
          end
        end
      end
      start, window = start + window, math.min(window * 2, 1024)
    end
  end
  take(pk(pid, 'evalpool'), math.min(n_eval, n), '1', false)
  take(pk(pid, 'queue'), n - #order, '0', true)
  take(pk(pid, 'pool'), n - #order, '0', false)
  take(pk(pid, 'evalpool'), n - #order, '1', false)
  place_all(pid, full)
  if #order == 0 then
    -- nothing open is left for this annotator; only a live hold on an item they have not answered
    -- (theirs or another's) may still come back to them
    local function open_to_them(item)
      return redis.call('SISMEMBER', pk(pid, 'answered'), item .. SEP .. annotator) == 0
    end
    for _, m in ipairs(redis.call('ZRANGE', pk(pid, 'held'), 0, -1)) do
      if redis.call('HEXISTS', pk(pid, 'hold'), m) == 1 and open_to_them(head(m)) then return {'0', expires} end
    end
    for _, lid in ipairs(redis.call('ZRANGE', pk(pid, 'leasing'), 0, -1)) do
      local holds = lease_holds(lid)
      local live = live_holds(pid, lid, holds)
      for i, h in ipairs(holds) do
        if live[i] and open_to_them(h[2]) then return {'0', expires} end
      end
    end
    return {'1', expires}
  end
  local out = {'0', expires}
  -- A hold on an item with no label and no other holder, that it fills, is the lease's alone: a flag
  -- in its hash, nothing per item elsewhere (no other lease can see that item while it is out of
  -- its pool). The others are entries in `hold`, counted in `nholds`. One call per key for all.
  local holds, keys, evals, sole, gone, counts = {}, {}, {}, {}, {}, {}
  for _, item in ipairs(order) do
    local p, need = picked[item], required(pid, item)
    local alone = sole_ok and p[3] == 0 and need == 1
    sole[#sole + 1] = alone and '1' or '0'
    if not alone then
      counts[#counts + 1] = item
      counts[#counts + 1] = p[4] + 1
      holds[#holds + 1] = item .. SEP .. annotator
      holds[#holds + 1] = lease_id .. SEP .. expires
    end
    keys[#keys + 1] = p[5]
    evals[#evals + 1] = p[1]
    -- it sat in its pool (queue items were checked against it); it leaves when this hold fills it
    if p[3] + 1 >= need then
      local key = pk(pid, p[1] == '1' and 'evalpool' or 'pool')
      gone[key] = gone[key] or {}
      table.insert(gone[key], item)
    end
  end
  -- kept until its expiry ends it (see reclaim), then a day
  local fields = {'project', pid, 'annotator', annotator, 'created_at', now_text, 'items',
                  table.concat(order, SEP), 'keys', table.concat(keys, SEP), 'evals', table.concat(evals)}
  if sole_ok then
    fields[#fields + 1] = 'sole'
    fields[#fields + 1] = table.concat(sole)
  end
  redis.call('HSET', lkey(lease_id), unpack(fields))
  redis.call('ZADD', pk(pid, 'leasing'), expires, lease_id)
  if #counts > 0 then
    redis.call('HSET', pk(pid, 'nholds'), unpack(counts))
    redis.call('HSET', pk(pid, 'hold'), unpack(holds))
  end
  for key, items in pairs(gone) do redis.call('ZREM', key, unpack(items)) end
  -- the items themselves, so the caller needs no second round trip
  local docs = redis.call('HMGET', pk(pid, 'items'), unpack(order))
  local pos = positions and redis.call('HMGET', pk(pid, 'pos'), unpack(order))
  for i, item in ipairs(order) do
    out[#out + 1] = item
    out[#out + 1] = picked[item][2]
    out[#out + 1] = docs[i]
    if positions then out[#out + 1] = pos[i] end
  end
  return out
end
local replies = {}
for i = 4, #ARGV, 6 do
  replies[#replies + 1] = lease(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),
                                ARGV[i + 4], ARGV[i + 5])
end
return replies
"""

RENEW = COMMON + r"""
-- ARGV: ns, lease_id, annotator, now, new_expires
local lid, annotator, now, expires = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local pid = redis.call('HGET', lkey(lid), 'project')
if not pid then return redis.error_reply('NOTFOUND unknown lease ' .. lid) end
if redis.call('HGET', lkey(lid), 'annotator') ~= annotator then
  return redis.error_reply('CONFLICT lease ' .. lid .. ' belongs to another annotator')
end
local renewed = 0
-- its sole holds are open until the lease's own expiry
local flags, until_ = redis.call('HGET', lkey(lid), 'sole'), redis.call('ZSCORE', pk(pid, 'leasing'), lid)
local sole_open = until_ and tonumber(until_) > now
for i, item in ipairs(lease_items(lid)) do
  if flags and string.sub(flags, i, i) == '1' then
    if sole_open then renewed = renewed + 1 end
  else
    local m = item .. SEP .. annotator
    local h = redis.call('HGET', pk(pid, 'hold'), m)
    local f = h and split(h)
    if f and f[1] == lid and tonumber(f[2]) > now then
      redis.call('HSET', pk(pid, 'hold'), m, lid .. SEP .. expires)
      redis.call('ZADD', pk(pid, 'held'), 'XX', expires, m)  -- a hold with its own entry
      renewed = renewed + 1
    end
  end
end
if renewed == 0 then
  return redis.error_reply('CONFLICT lease ' .. lid .. ' has expired or holds no open items')
end
redis.call('ZADD', pk(pid, 'leasing'), 'XX', expires, lid)
redis.call('EXPIRE', litems(lid), keep(lid, expires, now))  -- a lease from before the items field
return renewed
"""

RELEASE = COMMON + r"""
-- ARGV: ns, lease_id, annotator, all(1|0), item ids...
local lid, annotator = ARGV[2], ARGV[3]
local pid = redis.call('HGET', lkey(lid), 'project')
if not pid then return redis.error_reply('NOTFOUND unknown lease ' .. lid) end
if redis.call('HGET', lkey(lid), 'annotator') ~= annotator then
  return redis.error_reply('CONFLICT lease ' .. lid .. ' belongs to another annotator')
end
local items = {}
if ARGV[4] == '1' then
  items = lease_items(lid)
else
  for i = 5, #ARGV do items[#items + 1] = ARGV[i] end
end
local released = 0
for _, item in ipairs(items) do
  if unhold(pid, item, annotator, lid) then
    place(pid, item)
    released = released + 1
  end
end
save_soles()
return released
"""

EXPIRE = COMMON + r"""
-- ARGV: ns, now. Ends every expired hold of every project, in rounds of about 1000 per project.
local _, now_text = lease_clock(ARGV[2])
local n = 0
for _, pid in ipairs(redis.call('HKEYS', ns .. ':projects')) do
  while true do
    local ended, more = reclaim(pid, now_text, 1000)
    n = n + ended
    if not more then break end
  end
end
-- the one global expiry set of releases before `leasing`: their holds end from `held` above, and
-- a replica of such a release still running in a rolling upgrade may write it again
redis.call('UNLINK', ns .. ':expiry')
return n
"""

SUBMIT = COMMON + r"""
-- ARGV: ns, then per annotation: pid, item, annotator, kind, lease_id, idem_key ('' = none), json
local results, seen = {}, {}
for i = 2, #ARGV, 7 do
  local pid, item, annotator, kind, lid, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local dup = false
  if key ~= '' then
    local pos = redis.call('HGET', pk(pid, 'idem'), key)
    if pos then
      dup = true
      results[#results + 1] = {1, tonumber(pos), redis.call('LINDEX', pk(pid, 'log'), tonumber(pos) - 1)}
    end
  end
  if not dup then
    -- no lease (lid ''): an answer from an external tool (Label Studio), no hold to end
    local ok = lid == '' or (holds_it(pid, item, annotator, lid)
        and redis.call('HGET', lkey(lid), 'project') == pid and not seen[lid .. SEP .. item])
    if not ok then
      return redis.error_reply('CONFLICT item ' .. item .. ' is not open in lease ' .. lid ..
        ' of annotator ' .. annotator .. ' (wrong lease, already answered, released or expired)')
    end
    seen[lid .. SEP .. item] = true
    results[#results + 1] = false
  end
end
local out, k = {}, 0
for i = 2, #ARGV, 7 do
  k = k + 1
  local pid, item, annotator, kind, lid, key, doc = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  if results[k] then
    out[#out + 1] = 1; out[#out + 1] = results[k][2]; out[#out + 1] = results[k][3]
  else
    if lid ~= '' then unhold(pid, item, annotator, lid) end
    local pos = redis.call('RPUSH', pk(pid, 'log'), doc)
    if key ~= '' then redis.call('HSET', pk(pid, 'idem'), key, pos) end
    redis.call('SADD', pk(pid, 'answered'), item .. SEP .. annotator)
    if kind == 'label' then
      redis.call('INCR', pk(pid, 'labels'))
      redis.call('HINCRBY', pk(pid, 'nlabels'), item, 1)
    elseif kind == 'flag' then
      redis.call('SADD', pk(pid, 'flagged'), item)
    end
    -- back in the pool while it still has room (a skip leaves it for the others), else out
    place(pid, item)
    out[#out + 1] = 0; out[#out + 1] = pos; out[#out + 1] = doc
  end
end
save_soles()
return out
"""

QUEUE_DEPTH = COMMON + r"""
-- ARGV: ns, pid, now. open = items in a pool, plus held items with no room left (not flagged)
local pid = ARGV[2]
local flagged = redis.call('SCARD', pk(pid, 'flagged'))
local open = redis.call('ZCARD', pk(pid, 'pool')) + redis.call('ZCARD', pk(pid, 'evalpool'))
for _, item in ipairs(redis.call('HKEYS', pk(pid, 'nholds'))) do
  if not redis.call('ZSCORE', pk(pid, 'pool'), item) and not redis.call('ZSCORE', pk(pid, 'evalpool'), item)
      and redis.call('SISMEMBER', pk(pid, 'flagged'), item) == 0 then
    open = open + 1
  end
end
-- live holds: every hold not ended yet, less those whose expiry passed before a sweep ended them
-- (of expired leases, and older holds with an expired entry of their own). Sole holds are flags in
-- their leases: each is open (its item in no pool and not in `nholds`) and leased until its
-- lease's expiry.
local leased = redis.call('HLEN', pk(pid, 'hold'))
for _, m in ipairs(redis.call('ZRANGEBYSCORE', pk(pid, 'held'), '-inf', ARGV[3])) do
  local holder = redis.call('HGET', pk(pid, 'hold'), m)
  if holder and hold_expired(holder, ARGV[3]) then leased = leased - 1 end
end
local leases = redis.call('ZRANGE', pk(pid, 'leasing'), 0, -1, 'WITHSCORES')
for j = 1, #leases, 2 do
  local lid, expired = leases[j], tonumber(leases[j + 1]) <= tonumber(ARGV[3])
  local holds = lease_holds(lid)
  local live = expired and live_holds(pid, lid, holds) or {}
  for i, h in ipairs(holds) do
    if h[5] then
      open = open + 1
      leased = leased + 1
    end
    if expired and live[i] then leased = leased - 1 end
  end
end
local total = redis.call('LLEN', pk(pid, 'seq'))
return {total, open, leased, total - open - flagged, flagged, redis.call('SCARD', pk(pid, 'evalset'))}
"""

SETTLE_FORMAT = r"""
-- KEYS: lease-format, projects; ARGV: the newest format. A namespace with no project yet (no older
-- release has used it) starts at the newest format; one with projects keeps its format.
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""

CREATE_JOB = r"""
-- KEYS: active key, job key, project jobs list; ARGV: job id, job json
local current = redis.call('GET', KEYS[1])
if current then
  return redis.error_reply('CONFLICT a job of this kind is already running for this project: ' .. current)
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
"""

RELEASE_LOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

RENEW_LOCK = r"""
-- KEYS: lock, fence; ARGV: owner, token, new expires, ttl in ms. Extends the hold while the token
-- is the latest handed out (nobody took the lock since), even if Redis already dropped the key.
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) ~= ARGV[1] .. "\31" then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. "\31" .. ARGV[3], 'PX', ARGV[4])
return 1
"""
