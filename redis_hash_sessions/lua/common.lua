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
-- A signed-in session's hash notes, in "m:indexed", "<its entry's score>:
-- <when a write last saw the entry>", for the count that is not given the
-- index (engine._count_needs_save()): it has a save see to the entry when
-- the session's expiry would pass it or when nobody has looked at the
-- entry for this long, so that an entry lost with its index comes back
-- within about a minute even while the session is only counted. The
-- engine keeps the same figure (engine.INDEX_SLACK).
local INDEX_SLACK = 60

-- The longest TTL the engine writes (engine.MAX_EXPIRY_AGE).
local MAX_AGE = 1e11

-- How long a mark that a session moved to a new key lives: longer than a
-- request may run.
local MOVED_MARK_SECONDS = 30

-- Whether key holds a session: a hash with "m:created". A hash without it
-- is what a count left on a key that held none (see
-- engine._load_and_incr_commands), or data that is not ours.
local function holds_session(key)
  return redis.call("TYPE", key).ok == "hash"
    and redis.call("HEXISTS", key, "m:created") == 1
end

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
  -- Past what the engine writes, or NaN: not ours.
  if not ttl or ttl ~= ttl or ttl > MAX_AGE then return default_age end
  return math.floor(ttl)
end

-- Keep member's entry in a user's index (a sorted set by expiry time) at or
-- past expires, and note it in the session's hash; when the entry moves,
-- drop the entries that have expired and let the index expire with its
-- last entry. forced: score it whatever it holds. An index key of another
-- type (corrupted data) is replaced.
local function index(key, member, session, expires, now, forced)
  local kind = redis.call("TYPE", key).ok
  if kind ~= "zset" and kind ~= "none" then redis.call("DEL", key) end
  local score = tonumber(redis.call("ZSCORE", key, member))
  -- Past any score it writes (corrupted data, or another primary's clock):
  -- re-scored, so that the note stays one a count can read.
  local past_range = score and score > now + MAX_AGE + INDEX_SLACK
  if forced or not score or score < expires or past_range then
    score = expires + INDEX_SLACK
    redis.call("ZADD", key, score, member)
    redis.call("ZREMRANGEBYSCORE", key, "-inf", now)
    local last = tonumber(redis.call("ZRANGE", key, -1, -1, "WITHSCORES")[2])
    -- A score past any the engine writes (corrupted data) must not make
    -- EXPIREAT fail.
    redis.call("EXPIREAT", key, math.ceil(math.min(last, now + MAX_AGE + 2 * INDEX_SLACK)))
  end
  redis.call("HSET", session, "m:indexed", string.format("%d:%d", score, now))
end
