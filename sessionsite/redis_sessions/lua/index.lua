-- Helpers for the per-user index, put in front of every script that
-- creates, changes or deletes sessions, so that the index changes in the
-- same atomic step as the sessions it lists.
--
-- A user's index is <prefix>:user:<user id>: a sorted set of that user's
-- sessions (each named by its key without "<prefix>:", the SHA-256 of its
-- ID), scored by the Unix time at which the session expires. Every write
-- drops the members that have expired, and the index itself expires with
-- its last session, so it never grows without bound.

-- The user id a session hash holds (Django's _auth_user_id, as JSON), or nil.
local function user_of(key)
  local raw = redis.call("HGET", key, "d:_auth_user_id")
  if not raw then return nil end
  local ok, id = pcall(cjson.decode, raw)
  if ok and (type(id) == "string" or type(id) == "number") then
    return tostring(id)
  end
  return nil
end

local function index_of(prefix, user)
  return prefix .. ":user:" .. user
end

local function member_of(prefix, key)
  return string.sub(key, #prefix + 2)
end

local function prune(index, now)
  redis.call("ZREMRANGEBYSCORE", index, "-inf", now)
  local last = redis.call("ZRANGE", index, -1, -1, "WITHSCORES")
  if last[2] then
    redis.call("EXPIREAT", index, math.ceil(tonumber(last[2])))
  end
end

local function unindex(prefix, user, key, now)
  if not user then return end
  local index = index_of(prefix, user)
  redis.call("ZREM", index, member_of(prefix, key))
  prune(index, now)
end

local function reindex(prefix, user, key, expires, now)
  if not user then return end
  local index = index_of(prefix, user)
  redis.call("ZADD", index, expires, member_of(prefix, key))
  prune(index, now)
end
