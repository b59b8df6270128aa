-- Delete a session and return what it held, in one atomic step.
--
-- KEYS[1]  the session's hash
-- KEYS[2]  optional: the mark that it moved (so that nothing puts it back)
--
-- Returns the HGETALL of KEYS[1] before deletion (empty when it did not
-- exist or was not a hash), so that logout can still tell who is leaving.
-- The session's entry in its user's index goes when the index is next
-- read or pruned: both drop members whose session is gone.
local data = {}
if redis.call("TYPE", KEYS[1]).ok == "hash" then
  data = redis.call("HGETALL", KEYS[1])
end
redis.call("DEL", unpack(KEYS))
return data
