-- Send Redis the kinds of command the engine's scripts send, changing
-- nothing: for a readiness check, so that an ACL that refuses any of them
-- shows before a request meets it (Connection.probe()).
--
-- KEYS[1]  a key of the engine's that no session has: read, and written
--          by deleting a field that is not there
redis.call("TIME")
redis.call("HDEL", KEYS[1], "")
return redis.call("EXISTS", KEYS[1])
