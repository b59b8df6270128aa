-- End sessions of one user, found through that user's index (index.lua in
-- front of this script), and leave a short-lived mark for each, so that its
-- next request can say it was ended from another device.
--
-- KEYS[1]  the user's index: <prefix>:user:<user id>
-- ARGV[1]  now, as Unix time in seconds
-- ARGV[2]  the key prefix
-- ARGV[3]  how long the marks live, in seconds
-- ARGV[4]  "only": end the sessions named next; "except": end all but them
-- ARGV[5..] names of sessions in the index
--
-- Returns how many sessions ended. A name not in this user's index is
-- never touched: a user can end only their own sessions.
local now, prefix, mark_ttl, which = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local named = {}
for i = 5, #ARGV do named[ARGV[i]] = true end
local ended = 0
for _, member in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
  if (which == "only") == (named[member] == true) then
    if redis.call("DEL", prefix .. ":" .. member) == 1 then
      redis.call("SET", prefix .. ":ended:" .. member, 1, "EX", mark_ttl)
      ended = ended + 1
    end
    redis.call("ZREM", KEYS[1], member)
  end
end
prune(KEYS[1], now)
return ended
