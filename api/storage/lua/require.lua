-- ARGV: lease prefix, pool to move the items to ('' = none), then item id, required answers (an
-- integer >= 1) per item. All or nothing. 'main' sends an item of the evaluation slice to 'eval';
-- an item entering 'review' gets the next place in it, one already there keeps its own.
local to, items, need = ARGV[2], {}, {}
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', K.state, ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND unknown item ' .. ARGV[i])
  end
  items[#items + 1], need[ARGV[i]] = ARGV[i], ARGV[i + 1]
end
update(items, function(f, item)
  f[6] = need[item]
  local dest = (to == 'main' and f[2] == '1') and 'eval' or to
  if dest ~= '' and dest ~= f[4] then
    redis.call('ZREM', POOL[f[4]], item)
    f[4], f[5] = dest, dest == 'review' and redis.call('INCR', K.reviewseq) or f[3]
  end
end)
return #items
