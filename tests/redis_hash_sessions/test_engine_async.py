"""The SessionBase contract, kept by the Redis engine's native async methods."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import UpdateError

from redis_hash_sessions import keys
from redis_hash_sessions.engine import SessionStore

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("close_async_redis")]


@pytest.fixture(autouse=True)
def _sync_client_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test in this module that reaches Redis through the sync client."""

    def refuse(self: redis.Redis, *args: Any, **options: Any) -> Any:
        raise AssertionError(f"sync client used for {args[0]}")

    monkeypatch.setattr(redis.Redis, "execute_command", refuse)


async def stored(data: dict[str, Any]) -> SessionStore:
    session = SessionStore()
    await session.aupdate(data)
    await session.asave()
    return session


async def loaded(session_key: str | None) -> SessionStore:
    session = SessionStore(session_key)
    await session.akeys()
    return session


async def test_asave_then_aload_round_trips_the_data() -> None:
    session = await stored({"a": 1, "b": ["x"]})
    assert await SessionStore(session.session_key).aload() == {"a": 1, "b": ["x"]}


async def test_aget_aset_and_apop_work_on_a_stored_session() -> None:
    session = await loaded((await stored({"a": 1})).session_key)
    await session.aset("b", 2)
    assert await session.aget("a") == 1
    assert await session.apop("a") == 1
    await session.asave()
    assert await SessionStore(session.session_key).aload() == {"b": 2}


async def test_acreate_saves_an_empty_session_that_exists() -> None:
    session = SessionStore()
    await session.acreate()
    assert await session.aexists(session.session_key or "")


async def test_aexists_is_false_for_a_forged_key() -> None:
    assert not await SessionStore().aexists("forged")


async def test_adelete_removes_the_session() -> None:
    session = await stored({"a": 1})
    await session.adelete()
    assert not await SessionStore().aexists(session.session_key or "")


async def test_aflush_deletes_the_session_and_forgets_its_key() -> None:
    session = await stored({"a": 1})
    old_key = session.session_key
    await session.aflush()
    assert session.session_key is None
    assert not await SessionStore().aexists(old_key or "")


async def test_acycle_key_moves_the_data_to_a_new_key() -> None:
    session = await stored({"a": 1})
    old_key = session.session_key
    await session.acycle_key()
    await session.asave()
    assert session.session_key != old_key
    assert await SessionStore(session.session_key).aload() == {"a": 1}
    assert not await SessionStore().aexists(old_key or "")


async def test_acycle_key_of_a_signed_in_session_deleted_meanwhile_raises() -> None:
    session = await loaded((await stored({SESSION_KEY: "1"})).session_key)
    await SessionStore(session.session_key).adelete()
    with pytest.raises(UpdateError):
        await session.acycle_key()


async def test_acycle_key_removes_the_old_key_before_it_returns() -> None:
    session = await loaded((await stored({"a": 1})).session_key)
    old_key = session.session_key
    await session.acycle_key()
    assert not await SessionStore().aexists(old_key)


async def test_asave_of_a_deleted_session_raises_update_error() -> None:
    session = await loaded((await stored({"a": 1})).session_key)
    await session.aset("b", 2)
    await SessionStore(session.session_key).adelete()
    with pytest.raises(UpdateError):
        await session.asave()


async def test_aincr_adds_to_what_redis_holds() -> None:
    session = await stored({"visits": 1})
    first = await loaded(session.session_key)
    second = await loaded(session.session_key)
    assert await first.aincr("visits") == 2
    assert await second.aincr("visits") == 3


async def test_aincr_on_a_deleted_session_raises_update_error() -> None:
    session = await loaded((await stored({"visits": 1})).session_key)
    await SessionStore(session.session_key).adelete()
    with pytest.raises(UpdateError):
        await session.aincr("visits")


async def test_aincr_before_any_read_loads_the_session_with_the_count() -> None:
    session = await stored({"visits": 2, "name": "ada"})
    counting = SessionStore(session.session_key)
    assert await counting.aincr("visits") == 3
    assert await counting.aget("name") == "ada"
    assert await SessionStore(session.session_key).aget("visits") == 3


async def test_aincr_before_any_read_of_a_deleted_session_counts_in_a_new_one() -> None:
    session = await stored({"visits": 2})
    await SessionStore(session.session_key).adelete()
    counting = SessionStore(session.session_key)
    assert await counting.aincr("visits") == 1
    assert counting.session_key is None
    assert not await SessionStore().aexists(session.session_key)


async def test_aload_and_delete_keeps_the_data_readable() -> None:
    session = SessionStore((await stored({"a": 1})).session_key)
    await session.aload_and_delete()
    assert await session.aget("a") == 1
    assert not await SessionStore().aexists(session.session_key or "")


async def test_aset_expiry_sets_the_expiry_age() -> None:
    session = SessionStore()
    await session.aset_expiry(timedelta(minutes=10))
    await session.asave()
    age = await SessionStore(session.session_key).aget_expiry_age()
    assert 590 < age <= 600


async def test_aload_of_an_unknown_key_gives_an_empty_session() -> None:
    session = SessionStore(keys.new_session_key())
    assert await session.aload() == {}
    assert session.session_key is None
