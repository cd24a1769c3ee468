-- ARGV: lease prefix, lease id, annotator, project, then the item ids to release (none: all)
local lid, who = ARGV[2], ARGV[3]
local f = redis.call('HMGET', lkey(lid), 'project', 'annotator')
if f[1] ~= ARGV[4] then return redis.error_reply('NOTFOUND unknown lease ' .. lid) end
if f[2] ~= who then return redis.error_reply('CONFLICT lease ' .. lid .. ' belongs to another annotator') end
local items, done = #ARGV == 4 and holds_of(lid) or {}, {}
for i = 5, #ARGV do  -- the named items this lease still holds, once each
  if not done[ARGV[i]] and redis.call('HGET', K.holds, ARGV[i] .. SEP .. who) == lid then
    items[#items + 1] = ARGV[i]
  end
  done[ARGV[i]] = true
end
change_holds(items, who, -1)
return #items
