-- End some of one user's sessions and leave a short-lived mark for each,
-- so that its next request can say it was ended from another device.
--
-- KEYS[1]              the user's index
-- KEYS[2i], KEYS[2i+1] for i = 1 .. n: a session's hash and its mark
-- ARGV[1]              the field that names a session's user ("d:_auth_user_id")
-- ARGV[2]              that field's value for this user
-- ARGV[3]              how long the marks live, in seconds
-- ARGV[4 .. 3+n]       the names of the sessions in the index, in KEYS' order
--
-- Returns how many sessions ended. A session that is not in this user's
-- index, or that names another user, is never touched: a user can end
-- only their own sessions.
-- An index key of another type (corrupted data) names no session.
if redis.call("TYPE", KEYS[1]).ok ~= "zset" then return 0 end
local ended = 0
for i = 1, (#KEYS - 1) / 2 do
  local session, mark, member = KEYS[2 * i], KEYS[2 * i + 1], ARGV[3 + i]
  if redis.call("ZSCORE", KEYS[1], member) then
    if redis.call("HGET", session, ARGV[1]) == ARGV[2] then
      redis.call("DEL", session)
      redis.call("SET", mark, 1, "EX", ARGV[3])
      ended = ended + 1
    end
    redis.call("ZREM", KEYS[1], member)
  end
end
return ended
