-- Helpers put in front of every script that writes a session. No helper
-- builds a key name: every key a script touches comes in KEYS.
--
-- A session hash may hold "m:expiry", the rule its TTL follows when the
-- session has a custom expiry: "<n>" (n seconds after each write) or
-- "@<t>" (at Unix time t). Without it the TTL is the default age the
-- caller passes. The TTL thus follows what Redis holds, never a request's
-- possibly stale copy of it.

-- A user's index scores each session a little past its expiry, so that a
-- session written again and again (a visit counter) re-scores its entry
-- at most once a minute, not on every write. An entry is therefore never
-- pruned while its session lives, and is at most this many seconds late.
-- The session's hash notes the score it last gave its entry, in
-- "m:indexed", for the one script that is not given the index
-- (load_and_incr.lua); every other write reads the entry itself.
local INDEX_SLACK = 60

-- How long a mark that a session moved to a new key lives: longer than a
-- request may run.
local MOVED_MARK_SECONDS = 30

-- Now, by Redis's clock, in whole seconds: the clock TTLs run on.
local function clock()
  return tonumber(redis.call("TIME")[1])
end

-- The TTL, in seconds, that a session with the given expiry rule has from
-- now; a rule that is not one of ours (corrupted data) counts as none.
local function ttl_of(rule, default_age, now)
  if not rule then return default_age end
  local at = string.sub(rule, 1, 1) == "@" and tonumber(string.sub(rule, 2))
  local ttl = at and at - now or tonumber(rule)
  -- Past what the engine writes (engine.MAX_EXPIRY_AGE), or NaN: not ours.
  if not ttl or ttl ~= ttl or ttl > 1e11 then return default_age end
  return math.floor(ttl)
end

-- Keep member's entry in a user's index (a sorted set by expiry time) at or
-- past expires, and its score noted in the session's hash (noted: the note
-- the session holds, or false); when the entry moves, drop the entries that
-- have expired and let the index expire with its last entry. forced: score
-- it whatever it holds. An index key of another type (corrupted data) is
-- replaced.
local function index(key, member, session, noted, expires, now, forced)
  local kind = redis.call("TYPE", key).ok
  if kind ~= "zset" and kind ~= "none" then redis.call("DEL", key) end
  local score = redis.call("ZSCORE", key, member)
  if not forced and score and tonumber(score) >= expires then
    -- A note that says otherwise (missing, or the entry was moved back)
    -- would have every count report the entry due.
    if noted ~= score then redis.call("HSET", session, "m:indexed", score) end
    return
  end
  local new_score = expires + INDEX_SLACK
  redis.call("ZADD", key, new_score, member)
  redis.call("HSET", session, "m:indexed", new_score)
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now)
  local last = redis.call("ZRANGE", key, -1, -1, "WITHSCORES")
  redis.call("EXPIREAT", key, math.ceil(tonumber(last[2])))
end
