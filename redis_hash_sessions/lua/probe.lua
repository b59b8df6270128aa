-- Send Redis one of each kind of command the engine sends, changing
-- nothing: for a readiness check, so that a setup that refuses the engine
-- scripts, the clock or its keys shows before a request meets it
-- (Connection.probe()).
--
-- KEYS[1 .. n-1]  key names of the engine's that nothing holds (random
--                 ones): each read, and written by deleting a field
-- KEYS[n]         a key name of the engine's of another kind, which may
--                 hold anything: read
redis.call("TIME")
for i, key in ipairs(KEYS) do
  redis.call("EXISTS", key)
  if i < #KEYS then redis.call("HDEL", key, "") end
end
return 1
