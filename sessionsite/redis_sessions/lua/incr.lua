-- Add to an integer in a session, atomically, refresh its TTL and its
-- place in its user's index (index.lua, in front of this script).
--
-- KEYS[1]  the session's hash: <prefix>:<SHA-256 of the session ID>
-- ARGV[1]  the field ("d:" and the session key)
-- ARGV[2]  the amount to add (an integer, may be negative)
-- ARGV[3]  time to live in seconds
-- ARGV[4]  now, as Unix time in seconds
-- ARGV[5]  the key prefix
--
-- Returns the new value, or nil when the session no longer exists (the
-- counter must not bring a logged-out session back). A field that holds
-- something other than an integer makes HINCRBY fail; the error reply
-- reaches the caller and nothing is written.
if redis.call("EXISTS", KEYS[1]) == 0 then return false end
local value = redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
local ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call("EXPIRE", KEYS[1], ttl)
reindex(ARGV[5], user_of(KEYS[1]), KEYS[1], now + ttl, now)
return value
