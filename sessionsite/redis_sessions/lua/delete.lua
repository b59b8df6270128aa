-- Delete a session and return what it held, in one atomic step.
--
-- KEYS[1]  the session's hash: <prefix>:<SHA-256 of the session ID>
-- KEYS[2]  optional: a hash the session was moving from (a key rotation
--          that was not saved yet), deleted too
--
-- Returns the HGETALL of KEYS[1] before deletion (empty when it did not
-- exist or was not a hash), so that logout can still tell who is leaving.
local data = {}
if redis.call("TYPE", KEYS[1]).ok == "hash" then
  data = redis.call("HGETALL", KEYS[1])
end
redis.call("DEL", unpack(KEYS))
return data
