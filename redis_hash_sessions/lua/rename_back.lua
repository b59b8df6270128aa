-- Undo a key change that replicas did not confirm (engine.SessionStore._undo):
-- rename the session back to its old key, drop the mark that it moved, and
-- give its old name in its user's index the score its new name got, since
-- the rename keeps the TTL the key change set. Sent with EVAL, best effort.
--
-- KEYS[1]  the session's new hash
-- KEYS[2]  its old hash
-- KEYS[3]  the mark left for KEYS[2], saying that it moved
-- KEYS[4]  optional: the index of the user the session names
-- ARGV[1]  its new name in that index
-- ARGV[2]  its old name there
--
-- Returns 1 when renamed back, 0 when the new session is gone, another
-- session took the old key meanwhile (what else is there, such as what a
-- count of the old cookie left, is replaced; helpers: common.lua), or the
-- mark is gone: the old cookie logged out (deleting
-- the mark), and its session must not come back; the new key, whose cookie
-- no browser got, goes too.
if not holds_session(KEYS[1]) or holds_session(KEYS[2]) then return 0 end
if redis.call("EXISTS", KEYS[3]) == 0 then
  -- The old cookie logged out meanwhile: its session must not come back.
  redis.call("DEL", KEYS[1])
  if KEYS[4] and redis.call("TYPE", KEYS[4]).ok == "zset" then
    redis.call("ZREM", KEYS[4], ARGV[1], ARGV[2])
  end
  return 0
end
redis.call("RENAME", KEYS[1], KEYS[2])
redis.call("DEL", KEYS[3])
-- The note is of the new name's entry: the next write looks at the old one.
redis.call("HDEL", KEYS[2], "m:indexed")
if KEYS[4] and redis.call("TYPE", KEYS[4]).ok == "zset" then
  local score = redis.call("ZSCORE", KEYS[4], ARGV[1])
  if score then
    redis.call("ZADD", KEYS[4], score, ARGV[2])
    redis.call("ZREM", KEYS[4], ARGV[1])
  end
end
return 1
