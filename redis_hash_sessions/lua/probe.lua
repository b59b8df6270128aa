-- Run the commands the engine's writes run, and leave nothing: for a
-- readiness check, so that a setup that refuses the engine one of them
-- shows before a request meets it (Connection.probe()).
--
-- KEYS[1]  a session key name of the engine's that nothing holds (a random
--          one): written, read, given a TTL, then deleted
-- KEYS[2]  a mark key name of the engine's that nothing holds (random):
--          written as a user's index is, then deleted
-- KEYS[3]  a user's index, which may hold anything: read
redis.call("TIME")
redis.call("HSET", KEYS[1], "probe", 1)
redis.call("HINCRBY", KEYS[1], "probe", 1)
redis.call("HGETALL", KEYS[1])
redis.call("EXPIRE", KEYS[1], 60)
redis.call("TTL", KEYS[1])
redis.call("ZADD", KEYS[2], 0, "probe")
redis.call("DEL", KEYS[1], KEYS[2])
return redis.call("EXISTS", KEYS[3])
