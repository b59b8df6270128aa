-- Delete a session that goes on under a key in another hash slot (its new
-- key is created by the save that follows), return what it held, and leave
-- a mark that it moved, for the loads of its old key that come after
-- (helpers: common.lua).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  the mark left for KEYS[1]
--
-- Returns {its TTL in milliseconds, its HGETALL} before deletion, so that
-- the new key keeps what concurrent requests wrote (and the old one can be
-- put back if the new one cannot be written); {} when it no longer existed.
if not holds_session(KEYS[1]) then return {} end
local ttl = redis.call("PTTL", KEYS[1])
local data = redis.call("HGETALL", KEYS[1])
redis.call("DEL", KEYS[1])
redis.call("SET", KEYS[2], 1, "EX", MOVED_MARK_SECONDS)
return {ttl, data}
