-- List one user's live sessions, dropping from the user's index the members
-- that expired, whose session is gone (or whose key holds none: corrupted
-- data), or whose session names someone else (helpers: common.lua).
--
-- KEYS[1]        the user's index
-- KEYS[2 .. n+1] the hashes of the sessions the index listed
-- ARGV[1]        the field that names a session's user ("d:_auth_user_id")
-- ARGV[2]        that field's value for this user
-- ARGV[3]        f, how many fields to return for each session
-- ARGV[4 .. 3+f] the fields
-- ARGV[4+f ..]   the names of KEYS[2 ..] in the index, in the same order
--
-- Returns, for each live session: its name in the index, its expiry (Unix
-- time, from its TTL: the index's score may be up to a minute later, see
-- common.lua) and the values of the fields asked for (false where a field
-- is absent).
local now = tonumber(redis.call("TIME")[1])
local nfields = tonumber(ARGV[3])
local fields = {}
for i = 1, nfields do fields[i] = ARGV[3 + i] end
local result = {}
for i = 2, #KEYS do
  local member = ARGV[3 + nfields + i - 1]
  local score = redis.call("ZSCORE", KEYS[1], member)
  if score and tonumber(score) > now and holds_session(KEYS[i])
      and redis.call("HGET", KEYS[i], ARGV[1]) == ARGV[2] then
    local entry = {member, now + redis.call("TTL", KEYS[i])}
    if nfields > 0 then
      local values = redis.call("HMGET", KEYS[i], unpack(fields))
      for j = 1, nfields do entry[#entry + 1] = values[j] end
    end
    result[#result + 1] = entry
  elseif score then
    redis.call("ZREM", KEYS[1], member)
  end
end
return result
