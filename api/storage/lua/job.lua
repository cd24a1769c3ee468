-- KEYS: active key, job key, project jobs list; ARGV: job id, job json, or for a job that ended:
-- 'end', its id (its kind's active key is freed if it still names the job)
if ARGV[1] == 'end' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then return redis.call('DEL', KEYS[1]) end
  return 0
end
local current = redis.call('GET', KEYS[1])
if current then
  return redis.error_reply('CONFLICT a job of this kind is already running for this project: ' .. current)
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
