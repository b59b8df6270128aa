-- Write one request's changes to a session, atomically, set its TTL from
-- what it then holds, and keep its place in its user's index.
--
-- KEYS[1]  the session's hash
-- KEYS[2]  "rotate": the hash the session moves from (its previous ID);
--          otherwise KEYS[1] again
-- KEYS[3]  optional: the index of the user the session names
-- ARGV[1]  mode: "create" (KEYS[1] must not exist), "update" (KEYS[1] must
--          exist) or "rotate" (KEYS[2] must exist and is renamed to KEYS[1],
--          which must not exist)
-- ARGV[2]  the default age in seconds (SESSION_COOKIE_AGE)
-- ARGV[3]  the expiry rule (see common.lua) to store: "=" keeps the one
--          stored, "" removes it
-- ARGV[4]  "1": the caller never saw what the session holds, so every data
--          field ("d:...") that it does not set is deleted
-- ARGV[5]  the field that names the session's user ("d:_auth_user_id")
-- ARGV[6]  that field's value for which KEYS[3] is the index
-- ARGV[7]  the session's name in the index (its key hash)
-- ARGV[8]  n, how many fields to set; ARGV[9] .. ARGV[8 + 2n] are n
--          field, value pairs; any further arguments are fields to delete
--
-- Returns 1 when written, 0 when the session no longer exists ("update",
-- "rotate": a concurrent logout must not be undone) and -1 when KEYS[1]
-- is already taken ("create", "rotate").
local mode = ARGV[1]
local now = clock()
if mode == "create" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
  redis.call("HSET", KEYS[1], "m:created", now)
elseif mode == "update" then
  if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
elseif mode == "rotate" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
  if redis.call("EXISTS", KEYS[2]) == 0 then return 0 end
  redis.call("RENAME", KEYS[2], KEYS[1])
else
  return redis.error_reply("unknown mode " .. tostring(mode))
end

local last_set = 8 + 2 * tonumber(ARGV[8])
if ARGV[4] == "1" then
  local kept = {}
  for i = 9, last_set, 2 do kept[ARGV[i]] = true end
  for _, field in ipairs(redis.call("HKEYS", KEYS[1])) do
    if string.sub(field, 1, 2) == "d:" and not kept[field] then
      redis.call("HDEL", KEYS[1], field)
    end
  end
end
if last_set >= 9 then
  redis.call("HSET", KEYS[1], unpack(ARGV, 9, last_set))
end
if #ARGV > last_set then
  redis.call("HDEL", KEYS[1], unpack(ARGV, last_set + 1))
end
if ARGV[3] == "" then
  redis.call("HDEL", KEYS[1], "m:expiry")
elseif ARGV[3] ~= "=" then
  redis.call("HSET", KEYS[1], "m:expiry", ARGV[3])
end

local ttl = ttl_of(KEYS[1], tonumber(ARGV[2]), now)
if ttl <= 0 then
  redis.call("DEL", KEYS[1])
  return 1
end
redis.call("EXPIRE", KEYS[1], ttl)
if KEYS[3] and redis.call("HGET", KEYS[1], ARGV[5]) == ARGV[6] then
  reindex(KEYS[3], ARGV[7], now + ttl, now)
end
return 1
