-- Add to an integer in a session that the caller has not loaded yet, and
-- return the whole session, in one atomic step: a page whose first use of
-- the session is to count (a visit counter) makes one round trip, not a
-- load and then an increment (helpers: common.lua).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  the mark that it moved to a new key (see save.lua, leave.lua)
-- ARGV[1]  the field ("d:" and the session key)
-- ARGV[2]  the amount to add (an integer, may be negative)
-- ARGV[3]  the default age in seconds (SESSION_COOKIE_AGE)
-- ARGV[4]  the field that names the session's user ("d:_auth_user_id")
--
-- Returns {1, the new value, its HGETALL after the increment, 1 if its
-- entry in its user's index must move (the caller, who now knows the user,
-- has a save do it) or else 0}; {0, 1 if the moved mark stands or else 0}
-- when the session does not exist (nothing is written: the counter must
-- not bring a logged-out session back); {-1} when the key holds no session
-- of ours (corrupted data, left as it is). A field that holds something
-- other than an integer, or a sum past 64 bits, makes HINCRBY fail; the
-- error reply reaches the caller and nothing is written.
--
-- The index is not given to this script: the session's "m:indexed" note
-- (see common.lua) says whether its entry is due. While it is, the TTL is
-- not set past the noted entry, so that a session whose save never comes
-- (an error page, an outage, a caller that does not save) never outlives
-- its entry; the save sets the full TTL and sees to the entry in one step.

-- The entry's score a session's note gives, and whether the entry is due
-- for a session that lives until expires; a note that is missing or not
-- one of ours (corrupted data) gives no score and is due.
local function noted(note, expires, now)
  local entry, seen = string.match(note or "", "^(%d+):(%d+)$")
  entry, seen = tonumber(entry), tonumber(seen)
  if not entry or entry > now + MAX_AGE + INDEX_SLACK or seen > now then
    return nil, true
  end
  return entry, entry < expires or now - seen >= INDEX_SLACK
end

local kind = redis.call("TYPE", KEYS[1]).ok
if kind == "none" then return {0, redis.call("EXISTS", KEYS[2])} end
local stored = kind == "hash"
  and redis.call("HMGET", KEYS[1], "m:created", "m:expiry", ARGV[4], "m:indexed")
if not stored or not stored[1] then return {-1} end
local value = redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
local now = clock()
local ttl = ttl_of(stored[2], tonumber(ARGV[3]), now)
if ttl <= 0 then
  redis.call("DEL", KEYS[1])
  return {0, 0}
end
local due = false
if stored[3] then
  local entry
  entry, due = noted(stored[4], now + ttl, now)
  if due then
    if entry and entry - now >= 1 then ttl = math.min(ttl, math.floor(entry - now)) else ttl = nil end
  end
end
if ttl then redis.call("EXPIRE", KEYS[1], ttl) end
return {1, value, redis.call("HGETALL", KEYS[1]), due and 1 or 0}
