-- List one user's sessions (index.lua in front of this script), dropping
-- the members that expired or whose session is gone.
--
-- KEYS[1]  the user's index: <prefix>:user:<user id>
-- ARGV[1]  now, as Unix time in seconds
-- ARGV[2]  the key prefix
-- ARGV[3..] the hash fields to return for each session
--
-- Returns, for each live session: its name in the index, its expiry (Unix
-- time, as a string) and the values of the fields asked for (false where
-- a field is absent).
local now, prefix = tonumber(ARGV[1]), ARGV[2]
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
local fields = {unpack(ARGV, 3)}
local result = {}
local listed = redis.call("ZRANGE", KEYS[1], 0, -1, "WITHSCORES")
for i = 1, #listed, 2 do
  local key = prefix .. ":" .. listed[i]
  if redis.call("EXISTS", key) == 1 then
    local entry = {listed[i], listed[i + 1]}
    if #fields > 0 then
      local values = redis.call("HMGET", key, unpack(fields))
      for j = 1, #fields do entry[#entry + 1] = values[j] end
    end
    result[#result + 1] = entry
  else
    redis.call("ZREM", KEYS[1], listed[i])
  end
end
return result
