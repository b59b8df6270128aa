-- Write one request's changes to a session, atomically, refresh its TTL and
-- keep its user's index (index.lua, in front of this script) up to date.
--
-- KEYS[1]  the session's hash: <prefix>:<SHA-256 of the session ID>
-- KEYS[2]  "rotate": the hash the session moves from (its previous ID);
--          otherwise KEYS[1] again
-- ARGV[1]  mode: "create" (KEYS[1] must not exist), "update" (KEYS[1] must
--          exist) or "rotate" (KEYS[2] must exist and is renamed to KEYS[1],
--          which must not exist)
-- ARGV[2]  time to live in seconds; 0 or less deletes the session
-- ARGV[3]  now, as Unix time in seconds
-- ARGV[4]  the key prefix
-- ARGV[5]  n, how many fields to set; ARGV[6] .. ARGV[5 + 2n] are n
--          field, value pairs; any further arguments are fields to delete
--
-- Returns 1 when written, 0 when the session no longer exists ("update",
-- "rotate": a concurrent logout must not be undone) and -1 when KEYS[1]
-- is already taken ("create", "rotate").
local mode, ttl, now, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local before = nil
if mode == "create" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
elseif mode == "update" then
  if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
  before = user_of(KEYS[1])
elseif mode == "rotate" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
  if redis.call("EXISTS", KEYS[2]) == 0 then return 0 end
  before = user_of(KEYS[2])
  redis.call("RENAME", KEYS[2], KEYS[1])
else
  return redis.error_reply("unknown mode " .. tostring(mode))
end

local last_set = 5 + 2 * tonumber(ARGV[5])
for i = 6, last_set, 2 do
  redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = last_set + 1, #ARGV do
  redis.call("HDEL", KEYS[1], ARGV[i])
end

local after = nil
if ttl > 0 then
  redis.call("EXPIRE", KEYS[1], ttl)
  after = user_of(KEYS[1])
else
  redis.call("DEL", KEYS[1])
end
if before and (before ~= after or mode == "rotate") then
  unindex(prefix, before, KEYS[2], now)
end
reindex(prefix, after, KEYS[1], now + ttl, now)
return 1
