-- ARGV: lease prefix, pool to move the items to ('' = none), then item id, required answers (an
-- integer >= 1) per item. All or nothing. 'main' sends an item of the evaluation slice to 'eval';
-- an item entering 'review' gets the next place in it, one already there keeps its own.
local to = ARGV[2]
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', K.pos, ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND unknown item ' .. ARGV[i])
  end
end
local items = {}
for i = 3, #ARGV, 2 do
  local item = ARGV[i]
  if ARGV[i + 1] == '1' then
    redis.call('HDEL', K.required, item)
  else
    redis.call('HSET', K.required, item, ARGV[i + 1])
  end
  if to ~= '' then
    local f = split(redis.call('HGET', K.pos, item))  -- seq, is_eval, rand_key, pool, pool_key
    local dest = to
    if to == 'main' and f[2] == '1' then dest = 'eval' end
    if dest ~= f[4] then
      redis.call('ZREM', POOL[f[4]], item)
      f[4], f[5] = dest, dest == 'review' and redis.call('INCR', K.reviewseq) or f[3]
      redis.call('HSET', K.pos, item, table.concat(f, SEP))
    end
  end
  items[#items + 1] = item
end
settle_all(items)
return (#ARGV - 2) / 2
