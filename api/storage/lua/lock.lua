-- KEYS: lock ('owner SEP expires', with a PX expiry as a backstop), fence (the last token handed
-- out); ARGV: 'acquire', 'renew' or 'release', owner, token, now, new expiry, ttl in ms.
-- acquire: a new token unless a holder's expiry is after now (0). renew: 1 while the token is
-- still the latest (nobody took the lock since), even if Redis already dropped the key.
-- release: 1 if the owner held it.
local op, owner, held = ARGV[1], ARGV[2], redis.call('GET', KEYS[1])
local at = held and string.find(held, '\31', 1, true)
local holder, expires = held and string.sub(held, 1, at - 1), held and string.sub(held, at + 1)
if op == 'release' then
  if holder ~= owner then return 0 end
  return redis.call('DEL', KEYS[1])
elseif op == 'acquire' then
  if held and tonumber(expires) > tonumber(ARGV[4]) then return 0 end
elseif redis.call('GET', KEYS[2]) ~= ARGV[3] or (held and holder ~= owner) then
  return 0
end
redis.call('SET', KEYS[1], owner .. '\31' .. ARGV[5], 'PX', ARGV[6])
if op == 'acquire' then return redis.call('INCR', KEYS[2]) end
return 1
