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
-- The session's hash keeps the score it last gave its entry, in
-- "m:indexed", so that a write tells whether the entry must move without
-- reading the index (and a script that was not given the index can say so).
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
  -- Past what the engine writes (engine.MAX_EXPIRY_AGE): not a rule of ours.
  if not ttl or ttl > 1e11 then return default_age end
  return math.floor(ttl)
end

-- Whether a session's entry in its user's index must move for the session
-- to live until expires: indexed is the session's "m:indexed" (or false);
-- a note that is no score of ours (corrupted data) counts as none.
local function index_due(indexed, expires)
  local score = tonumber(indexed)
  return not (score and score >= expires and score < 1e11)
end

-- Keep member's entry in a user's index (a sorted set by expiry time) at or
-- past expires, and note its score in the session's hash; when it moves,
-- drop the entries that have expired and let the index expire with its
-- last entry. indexed: the session's "m:indexed"; forced: score it anyway.
local function index(key, member, session, indexed, expires, now, forced)
  if not forced and not index_due(indexed, expires) then return end
  local score = expires + INDEX_SLACK
  redis.call("ZADD", key, score, member)
  redis.call("HSET", session, "m:indexed", score)
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now)
  local last = redis.call("ZRANGE", key, -1, -1, "WITHSCORES")
  redis.call("EXPIREAT", key, math.ceil(tonumber(last[2])))
end
