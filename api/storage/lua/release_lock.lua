-- KEYS: the job-active key; ARGV: the job id that must hold it
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
