"""What the views do, as plain functions of the request's parts."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

import ua_parser
from django.conf import settings
from django.contrib.auth import SESSION_KEY, alogin, alogout, login, logout
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from redis_hash_sessions import keys, users
from redis_hash_sessions.engine import SessionStore
from redis_hash_sessions.exceptions import SessionStoreRefused, SessionStoreUnavailable

from .session_data import (
    DEVICE,
    EXPIRY,
    IP,
    LAST_ACTIVE,
    SIGNED_IN_AT,
    VISITS,
    wrong_fields,
)

SESSION_FIELDS = (SIGNED_IN_AT, LAST_ACTIVE, IP, DEVICE)
# The request attribute that holds the visit count_visit_first() counted.
COUNTED_FIRST = "visit_counted_first"
# A User-Agent longer than this is cut before it is parsed.
USER_AGENT_MAX_LENGTH = 512

logger = logging.getLogger("accounts.auth")
suspicious_logger = logging.getLogger("django.security.SuspiciousSession")

# The site's clock, for session lifetimes; tests replace it.
clock = time.time

# True while alog_in() runs: it records the sign-in itself, on the event
# loop, so the user_logged_in receiver (which asend() runs in a thread) must
# not.
signing_in_async: ContextVar[bool] = ContextVar("signing_in_async", default=False)


@dataclass(frozen=True)
class SessionFacts:
    signed_in_at: datetime | None
    expires_at: datetime
    redis_key: str | None


# An absolute path on this site: one leading slash, then no backslash, no
# control character or space, and no slash or backslash in disguise (%2F, %5C).
_LOCAL_PATH = re.compile(r"/(?![/\\])(?:(?!%2[fF]|%5[cC])[^\\\x00-\x20\x7f])*")


def is_local_path(url: str) -> bool:
    """Return True if url is a plain absolute path on this site."""
    return _LOCAL_PATH.fullmatch(url) is not None


def client_ip(request: HttpRequest) -> str | None:
    """
    Return the client's IP address.

    Behind the TLS proxy that DJANGO_BEHIND_TLS_PROXY declares, that is the
    last address in X-Forwarded-For: the one the proxy itself appended.
    Anywhere else X-Forwarded-For is the client's word and is ignored.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if address := ip_address_in(forwarded.rsplit(",", 1)[-1]):
            return address
    remote_addr: str | None = request.META.get("REMOTE_ADDR")
    return remote_addr


def ip_address_in(entry: str) -> str | None:
    """Return the IP address of an X-Forwarded-For entry (a port dropped), or None."""
    entry = entry.strip()
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:  # IPv4:port
        entry = entry.partition(":")[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def describe_device(user_agent: str) -> str:
    """Return a short description of a browser, such as "Firefox 128 on Linux"."""
    parsed = ua_parser.parse(user_agent[:USER_AGENT_MAX_LENGTH])
    browser = parsed.user_agent
    system = parsed.os
    if browser is None and system is None:
        return "Unknown device"
    name = f"{browser.family} {browser.major or ''}".strip() if browser else "A browser"
    return f"{name} on {system.family}" if system else name


def log_in(*, request: HttpRequest, user: User) -> None:
    """Log the user in under a new session key."""
    # login() keeps the key when the same user logs in again; a new login
    # always gets a new key (OWASP ASVS 5.0, 7.2.4). A session that names a
    # user starts afresh; login() cycles an anonymous one, keeping its data.
    if SESSION_KEY in request.session:
        request.session.flush()
    login(request, user)


async def alog_in(*, request: HttpRequest, user: User) -> None:
    """Log the user in under a new session key, on the event loop."""
    if await request.session.ahas_key(SESSION_KEY):
        await request.session.aflush()
    started = signing_in_async.set(True)
    try:
        await alogin(request, user)
    finally:
        signing_in_async.reset(started)
    await arecord_sign_in(request=request, user=user)


def record_sign_in(*, request: HttpRequest, user: User) -> None:
    """Note in the session when, where and how the user signed in; apply the cap."""
    _note_sign_in(request=request)
    if settings.SESSION_MAX_PER_USER:
        end_sessions_over_cap(
            user_id=user.pk, current=current_key_hash(request.session)
        )


async def arecord_sign_in(*, request: HttpRequest, user: User) -> None:
    _note_sign_in(request=request)
    if settings.SESSION_MAX_PER_USER:
        await aend_sessions_over_cap(
            user_id=user.pk, current=current_key_hash(request.session)
        )


def _note_sign_in(*, request: HttpRequest) -> None:
    """Write the sign-in's facts into the session, which login() has loaded."""
    now = clock()
    request.session[SIGNED_IN_AT] = datetime.fromtimestamp(now, tz=UTC).isoformat()
    request.session[LAST_ACTIVE] = int(now)
    request.session[IP] = client_ip(request)
    request.session[DEVICE] = describe_device(request.headers.get("User-Agent", ""))
    # Back from SESSION_ANONYMOUS_AGE to the default, SESSION_COOKIE_AGE.
    request.session.set_expiry(None)


def current_key_hash(session: SessionBase) -> str | None:
    """Return the name of this session in the users' index, if it has one."""
    return session.key_hash if isinstance(session, SessionStore) else None


def end_other_sessions(*, user_id: object, session: SessionBase) -> int:
    """End every session of the user but this one; return how many ended."""
    current = current_key_hash(session)
    return users.end_sessions(user_id, keep=[current] if current else [])


async def aend_other_sessions(*, user_id: object, session: SessionBase) -> int:
    current = current_key_hash(session)
    return await users.aend_sessions(user_id, keep=[current] if current else [])


def end_session_elsewhere(
    *, user_id: object, session: SessionBase, key_hash: str
) -> bool:
    """End one of the user's sessions other than this one; return whether it ended."""
    if key_hash == current_key_hash(session):
        return False
    return users.end_sessions(user_id, only=[key_hash]) == 1


async def aend_session_elsewhere(
    *, user_id: object, session: SessionBase, key_hash: str
) -> bool:
    if key_hash == current_key_hash(session):
        return False
    return await users.aend_sessions(user_id, only=[key_hash]) == 1


def end_sessions_of_user_who_left(*, user_id: object) -> None:
    """
    End every session of a user who was deactivated or deleted.

    With Redis unavailable, log that and go on: the sessions are refused
    anyway, since Django checks is_active and the user's existence on each
    request, and Redis expires them.
    """
    try:
        ended = users.end_sessions(user_id)
    except SessionStoreUnavailable as exc:
        # A refusal says what to set up; an outage's text, only that it is one.
        reason = exc if isinstance(exc, SessionStoreRefused) else "Redis is unavailable"
        logger.error(
            "could not end the sessions of user id=%s (they are refused until "
            "they expire): %s",
            user_id,
            reason,
        )
    else:
        logger.info("ended %d session(s) of user id=%s", ended, user_id)


def end_sessions_by_staff(*, request: HttpRequest, user: User) -> int:
    """End every session of the user, in one round trip; log who did it."""
    ended = users.end_sessions(user.pk)
    logger.info(
        "sessions ended by staff: staff=%r user=%r count=%d ip=%s",
        request.user.get_username(),
        user.get_username(),
        ended,
        client_ip(request),
    )
    return ended


def end_sessions_over_cap(*, user_id: object, current: str | None) -> int:
    """End the user's oldest sessions so that, with this one, at most the cap remain."""
    listed = users.sessions_of(user_id, fields=[SIGNED_IN_AT])
    oldest = _over_cap(listed, current=current)
    if not oldest:
        return 0
    return users.end_sessions(user_id, only=oldest)


async def aend_sessions_over_cap(*, user_id: object, current: str | None) -> int:
    listed = await users.asessions_of(user_id, fields=[SIGNED_IN_AT])
    oldest = _over_cap(listed, current=current)
    if not oldest:
        return 0
    return await users.aend_sessions(user_id, only=oldest)


def _over_cap(listed: Iterable[users.UserSession], *, current: str | None) -> list[str]:
    """Return the key hashes of the oldest sessions past the cap, this one aside."""
    others = [s for s in listed if s.key_hash != current]
    excess = len(others) - (settings.SESSION_MAX_PER_USER - 1)
    if excess <= 0:
        return []
    # An unreadable session sorts as the oldest.
    oldest = sorted(
        others, key=lambda s: s.data.get(SIGNED_IN_AT, "") if _readable(s) else ""
    )[:excess]
    return [s.key_hash for s in oldest]


def lifetime_is_over(*, session: SessionBase) -> bool:
    """
    Return True if the session signed in longer ago than the absolute lifetime.

    A session that does not say when it signed in is over: a lifetime that
    cannot be checked must not be endless.
    """
    signed_in_at = session.get(SIGNED_IN_AT)
    if signed_in_at is None:
        return True
    started = datetime.fromisoformat(signed_in_at).timestamp()
    return clock() - started > settings.SESSION_ABSOLUTE_LIFETIME


def note_activity(*, session: SessionBase) -> None:
    """Note activity, at most once a minute; the write refreshes the idle TTL."""
    now = int(clock())
    if now - int(session.get(LAST_ACTIVE, 0)) >= settings.SESSION_ACTIVITY_INTERVAL:
        session[LAST_ACTIVE] = now


@dataclass(frozen=True)
class DeviceSession:
    key_hash: str
    device: str
    ip: str | None
    signed_in_at: datetime | None
    last_active: datetime | None
    current: bool


def list_sessions(*, user_id: object, session: SessionBase) -> list[DeviceSession]:
    """
    Return the user's sessions, most recently active first, this one marked.

    A session that cannot be read (a field not JSON or of the wrong type)
    is left out and ended: no request could use it anyway.
    """
    found = users.sessions_of(user_id, fields=SESSION_FIELDS)
    listed, corrupt = _device_sessions(found, user_id=user_id, session=session)
    if corrupt:
        users.end_sessions(user_id, only=corrupt)
    return listed


async def alist_sessions(
    *, user_id: object, session: SessionBase
) -> list[DeviceSession]:
    found = await users.asessions_of(user_id, fields=SESSION_FIELDS)
    listed, corrupt = _device_sessions(found, user_id=user_id, session=session)
    if corrupt:
        await users.aend_sessions(user_id, only=corrupt)
    return listed


def _device_sessions(
    found: Iterable[users.UserSession], *, user_id: object, session: SessionBase
) -> tuple[list[DeviceSession], list[str]]:
    """Return the readable sessions, sorted for the page, and the unreadable ones."""
    current = current_key_hash(session)
    listed, corrupt = [], []
    for s in found:
        if not _readable(s):
            corrupt.append(s.key_hash)
            continue
        listed.append(
            DeviceSession(
                key_hash=s.key_hash,
                device=s.data.get(DEVICE, "Unknown device"),
                ip=s.data.get(IP),
                signed_in_at=(
                    datetime.fromisoformat(s.data[SIGNED_IN_AT])
                    if SIGNED_IN_AT in s.data
                    else None
                ),
                last_active=(
                    datetime.fromtimestamp(s.data[LAST_ACTIVE], tz=UTC)
                    if LAST_ACTIVE in s.data
                    else None
                ),
                current=s.key_hash == current,
            )
        )
    if corrupt:
        suspicious_logger.warning(
            "Session data corrupted: ending %d unreadable session(s) of user id=%s",
            len(corrupt),
            user_id,
        )
    ordered = sorted(
        listed,
        key=lambda s: s.last_active or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return ordered, corrupt


def _readable(session: users.UserSession) -> bool:
    return session.readable and not wrong_fields(session.data)


def discard_if_corrupt(*, session: SessionBase) -> bool:
    """
    Flush a session that holds a field of the wrong type; return whether it did.

    Such a session was not written by this site: it is treated like one
    that is not JSON, as corrupted, and the visitor starts afresh.
    """
    if not _is_corrupt(dict(session.items())):
        return False
    session.flush()
    return True


async def adiscard_if_corrupt(*, session: SessionBase) -> bool:
    if not _is_corrupt(dict(await session.aitems())):
        return False
    await session.aflush()
    return True


def _is_corrupt(data: dict[str, object]) -> bool:
    """Return True, and log why, if data holds a field of the wrong type."""
    wrong = wrong_fields(data)
    if wrong:
        suspicious_logger.warning(
            "Session data corrupted: wrong type in %s", ", ".join(wrong)
        )
    return bool(wrong)


def log_out(*, request: HttpRequest) -> None:
    """End the session: its data gone from Redis, the user logged out."""
    if isinstance(request.session, SessionStore):
        # Deletes and reads in one round trip; logout() then reads who is
        # leaving from memory and its flush() has nothing left to delete.
        request.session.load_and_delete()
    discard_if_corrupt(session=request.session)
    logout(request)


async def alog_out(*, request: HttpRequest) -> None:
    if isinstance(request.session, SessionStore):
        await request.session.aload_and_delete()
    await adiscard_if_corrupt(session=request.session)
    await alogout(request)


def count_visit(*, session: SessionBase) -> int:
    """
    Add one visit to the session's count and return the new count.

    A session without a user then gets SESSION_ANONYMOUS_AGE, which the
    save at the end of the request writes with its TTL.
    """
    if isinstance(session, SessionStore):
        count = session.incr(VISITS)
    else:
        count = session.get(VISITS, 0) + 1
        session[VISITS] = count
    _give_anonymous_age(session)
    return int(count)


async def acount_visit(*, session: SessionBase) -> int:
    if isinstance(session, SessionStore):
        count = await session.aincr(VISITS)
    else:
        count = int(await session.aget(VISITS, 0)) + 1
        await session.aset(VISITS, count)
    _give_anonymous_age(session)
    return count


def _give_anonymous_age(session: SessionBase) -> None:
    """Give a session without a user SESSION_ANONYMOUS_AGE; it is loaded by now."""
    if SESSION_KEY not in session and (
        session.get(EXPIRY) != settings.SESSION_ANONYMOUS_AGE
    ):
        session.set_expiry(settings.SESSION_ANONYMOUS_AGE)


def counts_visits_first[V: Callable[..., object]](view: V) -> V:
    """
    Mark a view whose GET counts a visit before anything reads the session.

    SessionLifetimeMiddleware then counts it first (count_visit_first()),
    which loads the session in the same round trip; the view's
    record_visit() returns that count. Not for a view that may refuse the
    request after the session is read (login_required): its refusals
    would count.
    """
    view.counts_visits_first = True  # type: ignore[attr-defined]
    return view


def count_visit_first(*, request: HttpRequest) -> None:
    """Count a GET to a counts_visits_first view, if its session is stored."""
    if not _counts_first(request):
        return
    session = request.session
    assert isinstance(session, SessionStore)
    try:
        count = session.load_and_incr(VISITS)
    except (TypeError, ValueError):
        # A count that is no integer: the session's check of its fields,
        # which comes next, discards it, and the view counts afresh.
        return
    if count is not None:
        setattr(request, COUNTED_FIRST, count)


async def acount_visit_first(*, request: HttpRequest) -> None:
    if not _counts_first(request):
        return
    session = request.session
    assert isinstance(session, SessionStore)
    try:
        count = await session.aload_and_incr(VISITS)
    except (TypeError, ValueError):
        return
    if count is not None:
        setattr(request, COUNTED_FIRST, count)


def _counted_first(request: HttpRequest) -> int | None:
    """Return the count count_visit_first() made, if its session goes on."""
    count = getattr(request, COUNTED_FIRST, None)
    # A session ended or discarded since (a lifetime that ran out, a field
    # that did not check out) counts afresh in the one that replaced it; one
    # that only changed its key (Django's get_user() after a SECRET_KEY
    # rotation) keeps its data, and the count in it.
    if count is None or request.session.get(VISITS) != count:
        return None
    _give_anonymous_age(request.session)
    return int(count)


def _counts_first(request: HttpRequest) -> bool:
    """Return True for a GET, with a stored session, to a counts_visits_first view."""
    if request.method != "GET" or not isinstance(request.session, SessionStore):
        return False
    if request.session.session_key is None:
        return False
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return getattr(match.func, "counts_visits_first", False)


def record_visit(*, request: HttpRequest) -> int:
    """Count a GET as a visit and return the count; a HEAD only reads it."""
    if (counted := _counted_first(request)) is not None:
        return counted
    if request.method == "HEAD":
        return int(request.session.get(VISITS, 0))
    return count_visit(session=request.session)


async def arecord_visit(*, request: HttpRequest) -> int:
    if (counted := _counted_first(request)) is not None:
        return counted
    if request.method == "HEAD":
        return int(await request.session.aget(VISITS, 0))
    return await acount_visit(session=request.session)


def session_facts(*, session: SessionBase) -> SessionFacts:
    """Return what the dashboard tells about the session."""
    signed_in_at = session.get(SIGNED_IN_AT)
    redis_key = None
    if isinstance(session, SessionStore) and session.session_key is not None:
        redis_key = session.names.session(keys.key_hash(session.session_key))
    return SessionFacts(
        signed_in_at=datetime.fromisoformat(signed_in_at) if signed_in_at else None,
        expires_at=session.get_expiry_date(),
        redis_key=redis_key,
    )
