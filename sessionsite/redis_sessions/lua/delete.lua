-- Delete a session and return what it held, in one atomic step, taking it
-- out of its user's index (index.lua, in front of this script).
--
-- KEYS[1]  the session's hash: <prefix>:<SHA-256 of the session ID>
-- KEYS[2]  optional: a hash the session was moving from (a key rotation
--          that was not saved yet), deleted too
-- ARGV[1]  now, as Unix time in seconds
-- ARGV[2]  the key prefix
--
-- Returns the HGETALL of KEYS[1] before deletion (empty when it did not
-- exist or was not a hash), so that logout can still tell who is leaving.
local now, prefix = tonumber(ARGV[1]), ARGV[2]
local data = {}
for i, key in ipairs(KEYS) do
  if redis.call("TYPE", key).ok == "hash" then
    if i == 1 then data = redis.call("HGETALL", key) end
    unindex(prefix, user_of(key), key, now)
  end
end
redis.call("DEL", unpack(KEYS))
return data
