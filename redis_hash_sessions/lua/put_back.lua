-- Put back a session that this request left for a key in another hash slot
-- (leave.lua) when that key could not be written: only if the mark that it
-- moved is still there (no logout of the old cookie has ended it since)
-- and no session has taken its key (what else is there, such as what a
-- count of the old cookie left, is replaced; helpers: common.lua).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  the mark leave.lua left for it
-- ARGV[1]  its TTL, in milliseconds
-- ARGV[2 ..] its fields and values, as leave.lua returned them
--
-- Returns 1 when put back, 0 when not.
if redis.call("EXISTS", KEYS[2]) == 0 or holds_session(KEYS[1]) then
  return 0
end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(ARGV, 2))
-- Its index entry may have been pruned while it was gone: the next write
-- scores it again.
redis.call("HDEL", KEYS[1], "m:indexed")
redis.call("PEXPIRE", KEYS[1], ARGV[1])
redis.call("DEL", KEYS[2])
return 1
