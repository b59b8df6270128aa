-- Add to an integer in a session, atomically, and refresh its TTL.
--
-- KEYS[1]  the session's hash: <prefix>:<SHA-256 of the session ID>
-- ARGV[1]  the field ("d:" and the session key)
-- ARGV[2]  the amount to add (an integer, may be negative)
-- ARGV[3]  time to live in seconds
--
-- Returns the new value, or nil when the session no longer exists (the
-- counter must not bring a logged-out session back). A field that holds
-- something other than an integer makes HINCRBY fail; the error reply
-- reaches the caller and nothing is written.
if redis.call("EXISTS", KEYS[1]) == 0 then return false end
local value = redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
redis.call("EXPIRE", KEYS[1], ARGV[3])
return value
