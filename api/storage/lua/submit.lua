-- ARGV: lease prefix, now, then per annotation: item, annotator, kind, lease id, idempotency key
-- ('' = none), payload (what the key stands for), annotation JSON. All or nothing: every one is
-- checked before anything is written. Returns per annotation: duplicate (1/0), log position, JSON.
local now = tonumber(ARGV[2])
local dup, seen, answered = {}, {}, {}
for i = 3, #ARGV, 7 do
  local item, who, kind, lid, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local first = key ~= '' and redis.call('HGET', K.idem, who .. SEP .. key)
  local m = item .. SEP .. who
  if first then
    local at = string.find(first, SEP, 1, true)
    if string.sub(first, at + 1) ~= ARGV[i + 5] then
      return redis.error_reply("CONFLICT idempotency key '" .. key .. "' of annotator '" .. who ..
        "' was used for another annotation")
    end
    dup[i] = tonumber(string.sub(first, 1, at - 1))
  elseif kind == 'correct' then  -- of an earlier answer (in this call or before)
    if not answered[m] and redis.call('SISMEMBER', K.answered, m) == 0 then
      return redis.error_reply('CONFLICT item ' .. item .. ' has no answer of annotator ' .. who ..
        ' to correct')
    end
  else
    -- lid '': an answer from an external tool (Label Studio), with no hold to end
    if lid ~= '' and (seen[m] or redis.call('HGET', K.holds, m) ~= lid or not live(lid, now)) then
      return redis.error_reply('CONFLICT item ' .. item .. ' is not open in lease ' .. lid ..
        ' of annotator ' .. who .. ' (wrong lease, already answered, released or expired)')
    end
    seen[m], answered[m] = true, true
  end
end
local out = {}
for i = 3, #ARGV, 7 do
  local item, who, kind, lid, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local payload, doc = ARGV[i + 5], ARGV[i + 6]
  if dup[i] then
    out[#out + 1] = 1; out[#out + 1] = dup[i]; out[#out + 1] = redis.call('LINDEX', K.log, dup[i] - 1)
  else
    local pos = redis.call('RPUSH', K.log, doc)
    if key ~= '' then redis.call('HSET', K.idem, who .. SEP .. key, pos .. SEP .. payload) end
    if kind ~= 'correct' then  -- a correction supersedes an answer and changes no count
      local m, answer = item .. SEP .. who, kind == 'label' or kind == 'review'
      redis.call('SADD', K.answered, m)
      if answer then redis.call('INCR', K.labels) end
      if kind == 'flag' then redis.call('SADD', K.flagged, item) end
      if lid ~= '' then redis.call('HDEL', K.holds, m) end  -- '': no hold to end
      update({item}, function(f)  -- open again while it still needs answers (a skip: for others)
        if answer then f[7] = tonumber(f[7]) + 1 end
        if lid ~= '' then f[8] = tonumber(f[8]) - 1 end
      end)
    end
    out[#out + 1] = 0; out[#out + 1] = pos; out[#out + 1] = doc
  end
end
return out
