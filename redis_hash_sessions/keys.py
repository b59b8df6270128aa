"""Session IDs, their signatures, and the Redis key names derived from them.

A session key, as the cookie carries it and ``SessionStore.session_key``
returns it, is ``<id>:<signature>``: 32 random characters from
``[a-z0-9]`` (165 bits) and an HMAC-SHA256 of them under ``SECRET_KEY``.
Redis never sees the ID itself, only its SHA-256 (in base64url), so key names in
``MONITOR``, ``SCAN``, a dump or a replica do not reveal a live cookie.

On Redis Cluster (the cache entry uses the engine's Cluster connection
factory), the first three characters of an ID are its slot tag: random in
an anonymous session, derived from the user's id in a signed-in one (see
user_tag()). Every key of a session, and the index of its user, then
carries the tag as a hash tag (``{abc}``), so that a user's sessions and
their index share one hash slot and one script can change them together.
On one Redis or behind Sentinel, names carry no tag.

Every Redis key name is made here, through the key function of the cache
entry that sessions use (its ``KEY_PREFIX``, ``VERSION`` and
``KEY_FUNCTION`` apply), so that two sites configured apart never share a
key, and no script builds one.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeIs

from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.core.cache.backends.base import get_key_func
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.encoding import force_bytes

from .from_settings import FromSettings

DEFAULT_PREFIX = "session"
ID_LENGTH = 32
TAG_LENGTH = 3
# The signatures' salt: a format constant, the engine's name when it first
# signed cookies. Changed, it would sign every user out.
SALT = "sessionsite.redis_sessions"
# "<32 id chars>:<43 base64url chars of an HMAC-SHA256>"
SESSION_KEY_LENGTH = ID_LENGTH + 1 + 43
# A random byte below 252 (7 x 36) stands for VALID_KEY_CHARS[byte % 36];
# the four bytes above are dropped, so that every character is as likely.
_EVEN_BYTES = 256 - 256 % len(VALID_KEY_CHARS)
_BYTE_TO_KEY_CHAR = bytes(
    ord(VALID_KEY_CHARS[byte % len(VALID_KEY_CHARS)]) for byte in range(256)
)
_UNEVEN_BYTES = bytes(range(_EVEN_BYTES, 256))
# base64 to base64url.
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_SHA256_BLOCK = 64
_GLOB = re.compile(r"[*?\[\]\\]")
_SESSION_KEY_RE = re.compile(r"[a-z0-9]{32}:[A-Za-z0-9_-]{43}")
# A key hash: the SHA-256 of the ID in base64url; on Redis Cluster the ID's
# tag, then that.
_KEY_HASH_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_TAGGED_KEY_HASH_RE = re.compile(r"[a-z0-9]{3}[A-Za-z0-9_-]{43}")
CLUSTER_FACTORY = "redis_hash_sessions.cluster.ClusterConnectionFactory"


class _Mac:
    """
    HMAC-SHA256 (RFC 2104) under one secret, from its two precomputed states.

    Keyed as django.core.signing.Signer(salt=SALT, algorithm="sha256") keys
    its HMAC (salted_hmac), so that its signatures are Django's. Signer
    derives the key and builds the HMAC on every call, and an hmac.HMAC
    copied per call costs about twice these two SHA-256 copies where a
    request runs them (README, "Where a request's time goes").
    """

    def __init__(self, secret: str | bytes) -> None:
        key = hashlib.sha256(
            force_bytes(SALT + "signer") + force_bytes(secret)
        ).digest()
        block = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))

    def signature(self, session_id: str) -> str:
        """Return session_id's signature: the HMAC in unpadded base64url."""
        inner = self._inner.copy()
        inner.update(session_id.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _base64url(outer.digest())


def _base64url(digest: bytes) -> str:
    """Return a 32-byte digest in base64url, without the padding (43 characters)."""
    return binascii.b2a_base64(digest, newline=False)[:43].translate(_URLSAFE).decode()


@FromSettings
def _macs() -> tuple[_Mac, ...]:
    """Return the HMAC for SECRET_KEY, then one for each fallback."""
    # As in Signer, an empty fallback (None, "") stands for SECRET_KEY:
    # never for a key anyone can sign with.
    secret = settings.SECRET_KEY
    return tuple(
        _Mac(key or secret) for key in (secret, *settings.SECRET_KEY_FALLBACKS)
    )


def _signed(session_id: str) -> str:
    return f"{session_id}:{_macs()[0].signature(session_id)}"


def is_well_formed(value: object) -> TypeIs[str]:
    """Return True if value has the shape of a signed session key."""
    return (
        isinstance(value, str)
        and len(value) == SESSION_KEY_LENGTH
        and _SESSION_KEY_RE.fullmatch(value) is not None
    )


def new_session_key(tag: str | None = None) -> str:
    """
    Return a new random session ID signed with the current SECRET_KEY.

    tag (user_tag()) starts the ID; without it the whole ID is random.
    """
    if tag is None:
        return _signed(_random_chars(ID_LENGTH))
    return _signed(tag + _random_chars(ID_LENGTH - TAG_LENGTH))


def _random_chars(length: int) -> str:
    """Return length characters of VALID_KEY_CHARS, each drawn uniformly."""
    # One draw from the OS for the whole string: Django's get_random_string()
    # makes one per character, which was most of the time a new key took.
    chars = b""
    while len(chars) < length:
        drawn = secrets.token_bytes(length + 8)
        chars += drawn.translate(_BYTE_TO_KEY_CHAR, _UNEVEN_BYTES)
    return chars[:length].decode()


def _in_key_chars(number: int, length: int) -> str:
    """Return the last length digits of number in base len(VALID_KEY_CHARS)."""
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(VALID_KEY_CHARS))
        chars.append(VALID_KEY_CHARS[index])
    return "".join(chars)


def user_tag(user_id: str) -> str:
    """
    Return the slot tag of a user's sessions: three characters of [a-z0-9].

    A hash of the user's id, without any secret, so that it never changes:
    a cookie's first three characters then tell a hash of whose it is, which
    the cookie, being the session itself, already gives away.
    """
    digest = int.from_bytes(hashlib.sha256(f"{SALT}:{user_id}".encode()).digest())
    return _in_key_chars(digest, TAG_LENGTH)


def tag_of(session_key: str) -> str | None:
    """Return the slot tag of a signed session key, or None for any other key."""
    return session_key[:TAG_LENGTH] if is_well_formed(session_key) else None


def verify(value: object) -> str | None:
    """
    Return value as a session key signed with the current SECRET_KEY, or None.

    A key signed with one of SECRET_KEY_FALLBACKS is accepted and returned
    re-signed with the current key. Anything malformed or with a bad
    signature gives None; the shape is checked before any HMAC is computed.
    """
    if not is_well_formed(value):
        return None
    session_id, signature = value[:ID_LENGTH], value[ID_LENGTH + 1 :]
    current, *fallbacks = _macs()
    current_signature = current.signature(session_id)
    if hmac.compare_digest(current_signature, signature):
        return value
    # Not the current key's signature: the cookie may be from a fallback key.
    for mac in fallbacks:
        if hmac.compare_digest(mac.signature(session_id), signature):
            return f"{session_id}:{current_signature}"
    return None


def key_hash(session_key: str) -> str:
    """
    Return a session's name in Redis: the SHA-256 of its ID, in base64url.

    The ID of a signed key is the part before its signature, so that a key
    re-signed after a SECRET_KEY rotation names the same session; a key set
    directly (``session._session_key = ...``) is taken whole. On Redis
    Cluster the name starts with the ID's tag (a key set directly: with
    a tag made from its hash).
    """
    session_id = session_key[:ID_LENGTH] if is_well_formed(session_key) else session_key
    # base64url: the whole digest in 43 characters, where hex takes 64.
    encoded = _base64url(hashlib.sha256(session_id.encode()).digest())
    if not names().tagged:
        return encoded
    return (tag_of(session_key) or user_tag(encoded)) + encoded


def key_prefix() -> str:
    """Return SESSION_REDIS_KEY_PREFIX, or its default."""
    prefix: str = getattr(settings, "SESSION_REDIS_KEY_PREFIX", DEFAULT_PREFIX)
    return prefix


@dataclass(frozen=True)
class KeyNames:
    """The Redis key names of sessions, users' indexes, and marks on sessions."""

    make_key: Callable[[str], str]
    prefix: str
    # On Redis Cluster, every name carries its slot tag in braces: a key
    # hash's first TAG_LENGTH characters, or the user's tag.
    tagged: bool = False

    def session(self, key_hash: str) -> str:
        return self.make_key(f"{self.prefix}:{self._tagged(key_hash)}")

    def index(self, user_id: str) -> str:
        tag = f"{{{user_tag(user_id)}}}" if self.tagged else ""
        return self.make_key(f"{self.prefix}:user:{tag}{user_id}")

    def ended(self, key_hash: str) -> str:
        return self.make_key(f"{self.prefix}:ended:{self._tagged(key_hash)}")

    def moved(self, key_hash: str) -> str:
        return self.make_key(f"{self.prefix}:moved:{self._tagged(key_hash)}")

    def _tagged(self, key_hash: str) -> str:
        if not self.tagged:
            return key_hash
        return f"{{{key_hash[:TAG_LENGTH]}}}{key_hash[TAG_LENGTH:]}"

    def is_key_hash(self, name: object) -> TypeIs[str]:
        """Return True if name has the shape of a key hash under these names."""
        pattern = _TAGGED_KEY_HASH_RE if self.tagged else _KEY_HASH_RE
        return isinstance(name, str) and pattern.fullmatch(name) is not None

    def user_may_own(self, user_id: str, key_hash: object) -> bool:
        """
        Return False for a name that cannot be one of the user's sessions.

        A name that is no key hash is none (it could name another key, or
        none that a URL can carry); on Redis Cluster a user's sessions carry
        the user's tag, and any other would be in another hash slot.
        """
        if not self.is_key_hash(key_hash):
            return False
        return not self.tagged or key_hash.startswith(user_tag(user_id))

    def sessions_pattern(self) -> str:
        """Return a SCAN pattern that matches every session (and more)."""
        # A key function that keeps the name at its end, as Django's does;
        # glob characters in the prefixes match only themselves.
        return _GLOB.sub(r"\\\g<0>", self.make_key(f"{self.prefix}:")) + "*"


@FromSettings
def names() -> KeyNames:
    """Return the key names under the settings (built once, on first use)."""
    # The cache entry's key function, prefix and version, as its backend
    # makes keys (BaseCache.make_key()), from the settings themselves: the
    # cache handler is rebuilt by a setting_changed receiver that may run
    # after ours, and a call in between would keep the old entry's names.
    entry = settings.CACHES[settings.SESSION_CACHE_ALIAS]
    key_function = get_key_func(entry.get("KEY_FUNCTION"))
    entry_prefix, version = entry.get("KEY_PREFIX", ""), entry.get("VERSION", 1)
    return KeyNames(
        make_key=lambda name: key_function(name, entry_prefix, version),
        prefix=key_prefix(),
        tagged=entry.get("OPTIONS", {}).get("CONNECTION_FACTORY") == CLUSTER_FACTORY,
    )


@receiver(setting_changed)
def _forget_what_settings_made(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "SESSION_CACHE_ALIAS", "SESSION_REDIS_KEY_PREFIX"}:
        names.forget()
    if setting in {"SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        _macs.forget()
