-- ARGV: lease prefix, now, lease id, annotator, project, new expiry, seconds to keep the lease key
local lid, who = ARGV[3], ARGV[4]
local f = redis.call('HMGET', lkey(lid), 'project', 'annotator')
if f[1] ~= ARGV[5] then return redis.error_reply('NOTFOUND unknown lease ' .. lid) end
if f[2] ~= who then return redis.error_reply('CONFLICT lease ' .. lid .. ' belongs to another annotator') end
local items = holds_of(lid)
if #items == 0 or not live(lid, tonumber(ARGV[2])) then
  return redis.error_reply('CONFLICT lease ' .. lid .. ' has expired or holds no open items')
end
redis.call('ZADD', K.leasing, 'XX', ARGV[6], lid)
redis.call('EXPIRE', lkey(lid), ARGV[7])
return #items
