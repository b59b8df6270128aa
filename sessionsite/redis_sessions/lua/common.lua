-- Helpers put in front of every script that writes a session. No helper
-- builds a key name: every key a script touches comes in KEYS.
--
-- A session hash may hold "m:expiry", the rule its TTL follows when the
-- session has a custom expiry: "<n>" (n seconds after each write) or
-- "@<t>" (at Unix time t). Without it the TTL is the default age the
-- caller passes. The TTL thus follows what Redis holds, never a request's
-- possibly stale copy of it.

-- Now, by Redis's clock, in whole seconds: the clock TTLs run on.
local function clock()
  return tonumber(redis.call("TIME")[1])
end

-- The TTL, in seconds, that the session at key should have from now on.
local function ttl_of(key, default_age, now)
  local rule = redis.call("HGET", key, "m:expiry")
  if not rule then return default_age end
  if string.sub(rule, 1, 1) == "@" then
    return tonumber(string.sub(rule, 2)) - now
  end
  return tonumber(rule)
end

-- Score member in a user's index (a sorted set by expiry time), drop the
-- members that have expired, and let the index expire with its last member.
local function reindex(index, member, expires, now)
  redis.call("ZADD", index, expires, member)
  redis.call("ZREMRANGEBYSCORE", index, "-inf", now)
  local last = redis.call("ZRANGE", index, -1, -1, "WITHSCORES")
  if last[2] then
    redis.call("EXPIREAT", index, math.ceil(tonumber(last[2])))
  end
end
