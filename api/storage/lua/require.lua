-- ARGV: lease prefix, then item id, required answers (an integer >= 1) per item. All or nothing.
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', K.items, ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND unknown item ' .. ARGV[i])
  end
end
local items = {}
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '1' then
    redis.call('HDEL', K.required, ARGV[i])
  else
    redis.call('HSET', K.required, ARGV[i], ARGV[i + 1])
  end
  items[#items + 1] = ARGV[i]
end
settle_all(items)
return (#ARGV - 1) / 2
