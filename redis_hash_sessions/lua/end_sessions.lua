-- End some of one user's sessions, drop them from the user's index, and
-- leave a short-lived mark for each, so that its next request can say it
-- was ended from another device (helpers: common.lua).
--
-- KEYS[1]              the user's index
-- KEYS[2i], KEYS[2i+1] for i = 1 .. n: a session's hash and its mark
-- ARGV[1]              the field that names a session's user ("d:_auth_user_id")
-- ARGV[2]              that field's value for this user
-- ARGV[3]              how long the marks live, in seconds
-- ARGV[4 .. 3+n]       the sessions' names (key hashes), in KEYS' order
--
-- Returns how many sessions ended. A key that holds no session, or a
-- session that names another user, is never touched: a user can end only
-- their own sessions. One of theirs ends even when the index lost it (an
-- eviction, a flush) or is of another type (corrupted data, which the
-- next write replaces and which nothing here changes).
local indexed = redis.call("TYPE", KEYS[1]).ok == "zset"
local ended = 0
for i = 1, (#KEYS - 1) / 2 do
  local session, mark, member = KEYS[2 * i], KEYS[2 * i + 1], ARGV[3 + i]
  if holds_session(session) and redis.call("HGET", session, ARGV[1]) == ARGV[2] then
    redis.call("DEL", session)
    redis.call("SET", mark, 1, "EX", ARGV[3])
    ended = ended + 1
  end
  if indexed then redis.call("ZREM", KEYS[1], member) end
end
return ended
