-- Write one request's changes to a session, atomically, set its TTL from
-- what it then holds, and keep its entry in its user's index (helpers:
-- common.lua).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  "rotate": the hash the session moves from (its previous ID);
--          otherwise KEYS[1] again
-- KEYS[3]  "rotate": the mark left for KEYS[2], saying that it moved (not
--          that it was deleted), for the loads that come after; otherwise
--          KEYS[1] again
-- KEYS[4]  optional: the index of the user the session names
-- ARGV[1]  mode: "create" (KEYS[1] must not exist), "update" (KEYS[1] must
--          exist) or "rotate" (KEYS[2] must exist and is renamed to KEYS[1],
--          which must not exist)
-- ARGV[2]  the default age in seconds (SESSION_COOKIE_AGE)
-- ARGV[3]  the expiry rule (see common.lua) to store: "=" keeps the one
--          stored, "" removes it
-- ARGV[4]  "1": the caller never saw what the session holds, so every data
--          field ("d:...") that it does not set is deleted
-- ARGV[5]  the field that names the session's user ("d:_auth_user_id")
-- ARGV[6]  that field's value for which KEYS[4] is the index
-- ARGV[7]  the session's name in the index (its key hash)
-- ARGV[8]  n, how many fields to set; ARGV[9] .. ARGV[8 + 2n] are n
--          field, value pairs; any further arguments are fields to delete
--
-- Returns 1 when written, 0 when the session no longer exists ("update",
-- "rotate": a concurrent logout must not be undone) and -1 when KEYS[1] is
-- already taken ("create", "rotate"). "m:created", which every session holds, is how a
-- script tells that a session exists.
local mode = ARGV[1]
local now = clock()
local rule, user = false, false
if mode == "create" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
  redis.call("HSET", KEYS[1], "m:created", now)
elseif mode == "update" or mode == "rotate" then
  if mode == "rotate" and redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
  local stored = redis.call("HMGET", KEYS[2], "m:created", "m:expiry", ARGV[5])
  if not stored[1] then return 0 end
  rule, user = stored[2], stored[3]
  if mode == "rotate" then
    redis.call("RENAME", KEYS[2], KEYS[1])
    redis.call("SET", KEYS[3], 1, "EX", MOVED_MARK_SECONDS)
  end
else
  return redis.error_reply("unknown mode " .. tostring(mode))
end

local last_set = 8 + 2 * tonumber(ARGV[8])
local user_written = false
if ARGV[4] == "1" then
  local kept = {}
  for i = 9, last_set, 2 do kept[ARGV[i]] = true end
  for _, field in ipairs(redis.call("HKEYS", KEYS[1])) do
    if string.sub(field, 1, 2) == "d:" and not kept[field] then
      redis.call("HDEL", KEYS[1], field)
    end
  end
  user = false
end
if last_set >= 9 then
  redis.call("HSET", KEYS[1], unpack(ARGV, 9, last_set))
  for i = 9, last_set, 2 do
    if ARGV[i] == ARGV[5] then user, user_written = ARGV[i + 1], true end
  end
end
if #ARGV > last_set then
  redis.call("HDEL", KEYS[1], unpack(ARGV, last_set + 1))
  for i = last_set + 1, #ARGV do
    if ARGV[i] == ARGV[5] then user = false end
  end
end
if ARGV[3] == "" then
  redis.call("HDEL", KEYS[1], "m:expiry")
  rule = false
elseif ARGV[3] ~= "=" then
  redis.call("HSET", KEYS[1], "m:expiry", ARGV[3])
  rule = ARGV[3]
end

local ttl = ttl_of(rule, tonumber(ARGV[2]), now)
if ttl <= 0 then
  redis.call("DEL", KEYS[1])
  return 1
end
redis.call("EXPIRE", KEYS[1], ttl)
if KEYS[4] and user == ARGV[6] then
  index(KEYS[4], ARGV[7], KEYS[1], now + ttl, now, mode ~= "update" or user_written)
end
return 1
