-- Add to an integer in a session, atomically, refresh its TTL and its
-- entry in its user's index (helpers: common.lua).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  optional: the index of the user the session names
-- ARGV[1]  the field ("d:" and the session key)
-- ARGV[2]  the amount to add (an integer, may be negative)
-- ARGV[3]  the default age in seconds (SESSION_COOKIE_AGE)
-- ARGV[4]  the field that names the session's user ("d:_auth_user_id")
-- ARGV[5]  that field's value for which KEYS[2] is the index
-- ARGV[6]  the session's name in the index (its key hash)
--
-- Returns the new value, or nil when the session no longer exists (the
-- counter must not bring a logged-out session back). A field that holds
-- something other than an integer, or a sum past 64 bits, makes HINCRBY
-- fail; the error reply reaches the caller and nothing is written.
local stored = redis.call("HMGET", KEYS[1], "m:created", "m:expiry", ARGV[4])
if not stored[1] then return false end
local value = redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
local now = clock()
local ttl = ttl_of(stored[2], tonumber(ARGV[3]), now)
if ttl <= 0 then
  redis.call("DEL", KEYS[1])
  return value
end
redis.call("EXPIRE", KEYS[1], ttl)
if KEYS[2] and stored[3] == ARGV[5] then
  index(KEYS[2], ARGV[6], KEYS[1], now + ttl, now, false)
end
return value
