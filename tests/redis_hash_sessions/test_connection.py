"""The engine's Redis clients: built from one configuration, closed when done."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme
from asgiref.sync import async_to_sync
from django.test import override_settings

from redis_hash_sessions import connection
from redis_hash_sessions.engine import SessionStore
from tests.conftest import caches_for, stored_key
from tests.redis_process import RedisProcess, free_port


def connected_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["connected_clients"])


def settle(client: redis.Redis, expected: int) -> int:
    """Return the server's client count once it is expected, or after 2 s."""
    deadline = time.monotonic() + 2
    while (count := connected_clients(client)) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return count


def test_async_calls_from_sync_code_close_their_connections(redis_client):
    key = stored_key()
    before = connected_clients(redis_client)
    for _ in range(5):
        assert async_to_sync(SessionStore(key).aload)() == {"visits": 1}
    gc.collect()  # an unclosed socket would warn here, and warnings fail tests
    assert settle(redis_client, before) == before


@pytest.fixture
def held_in_making(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """
    Hold the next connection made, once it has read the settings, until
    released: return the events that say it is held and that release it.
    """
    held, release = threading.Event(), threading.Event()
    session_cache = connection._session_cache

    def slow_session_cache() -> Any:
        cache = session_cache()
        if not held.is_set():
            held.set()
            release.wait(timeout=10)
        return cache

    monkeypatch.setattr(connection, "_session_cache", slow_session_cache)
    connection.get_connection.forget()
    return held, release


def test_a_connection_made_while_the_caches_change_is_made_again(
    redis_topology, settings, held_in_making
):
    # The thread read the old CACHES just before they changed; the client
    # it makes from them must not outlive the change.
    held, release = held_in_making
    made: list[connection.Connection] = []
    thread = threading.Thread(target=lambda: made.append(connection.get_connection()))
    thread.start()
    assert held.wait(timeout=10)
    settings.CACHES = redis_topology.caches(db=4)
    release.set()
    thread.join(timeout=10)
    assert made
    assert connection.get_connection() is not made[0]


def test_connections_made_at_once_leave_the_first_kept_for_every_later_call(
    held_in_making,
):
    # A later one kept instead would have the loop's async connection, built
    # from the first, made again (and the first closed under its requests).
    held, release = held_in_making
    thread = threading.Thread(target=connection.get_connection)
    thread.start()
    assert held.wait(timeout=10)
    kept = connection.get_connection()
    release.set()
    thread.join(timeout=10)
    assert connection.get_connection() is kept


def test_a_connection_made_before_django_hears_of_new_caches_is_of_the_new_ones(
    redis_topology, monkeypatch
):
    if redis_topology.name == "cluster":
        pytest.skip("a cluster has database 0 only")
    # Our receiver runs before Django's, which rebuilds its cache handler: a
    # connection made in between (by another thread, say) is made here.
    made: list[connection.Connection] = []
    forget = connection.get_connection.forget

    def forget_and_make() -> None:
        forget()
        made.append(connection.get_connection())

    monkeypatch.setattr(connection.get_connection, "forget", forget_and_make)
    with override_settings(CACHES=redis_topology.caches(db=5)):
        assert made[0].client.connection_pool.connection_kwargs["db"] == 5
        assert connection.get_connection() is made[0]


def test_an_async_connection_is_made_again_when_the_caches_change(redis_topology):
    async def before_and_after() -> tuple[Any, Any, int]:
        before = await connection.get_async_connection()
        with override_settings(CACHES=redis_topology.caches(db=4)):
            after = await connection.get_async_connection()
            assert await connection.get_async_connection() is after
        return before, after, await connection.close_async_connections()

    before, after, closed = async_to_sync(before_and_after)()
    assert after is not before
    assert closed == 2


def test_an_async_connection_replaced_stays_open_for_the_requests_using_it(
    redis_topology,
):
    async def replaced_then_used() -> bool:
        before = await connection.get_async_connection()
        with override_settings(CACHES=redis_topology.caches(db=4)):
            await connection.get_async_connection()
            await asyncio.sleep(0)  # what the loop has scheduled runs
            answered = await before.client.ping()
        await connection.close_async_connections()
        return bool(answered)

    assert async_to_sync(replaced_then_used)()


def test_the_async_pool_has_the_sync_pools_settings():
    sync_pool = redis.BlockingConnectionPool.from_url(
        "rediss://user:secret@127.0.0.1:6380/3?health_check_interval=7",
        socket_keepalive=True,
        socket_timeout=0.25,
        ssl_ca_certs="/etc/ssl/certs/ca-certificates.crt",
        max_connections=9,
        timeout=0.75,
    )
    pool = connection.async_pool_for(sync_pool)
    assert isinstance(pool, redis.asyncio.BlockingConnectionPool)
    assert pool.connection_class is redis.asyncio.SSLConnection
    assert (pool.max_connections, pool.timeout) == (9, 0.75)
    kwargs = pool.connection_kwargs
    assert kwargs["username"] == "user"
    assert kwargs["password"] == "secret"
    assert kwargs["db"] == 3
    assert kwargs["health_check_interval"] == 7
    assert kwargs["socket_keepalive"] is True
    assert kwargs["socket_timeout"] == 0.25
    assert kwargs["ssl_ca_certs"] == "/etc/ssl/certs/ca-certificates.crt"


def test_an_option_redis_asyncio_lacks_is_refused():
    sync_pool = redis.ConnectionPool.from_url(
        "rediss://127.0.0.1:6380/0", ssl_validate_ocsp=True
    )
    with pytest.raises(connection.ImproperlyConfigured, match="ssl_validate_ocsp"):
        connection.async_pool_for(sync_pool)


def both_clients_work() -> None:
    session = SessionStore()
    session["visits"] = 1
    session.save()
    assert async_to_sync(SessionStore(session.session_key).aload)() == {"visits": 1}
    later = SessionStore(session.session_key)
    async_to_sync(later.aincr)("visits")
    assert later.load() == {"visits": 2}


def test_a_password_protected_redis_works_for_both_clients(tmp_path: Path):
    server = RedisProcess(tmp_path, password="s3cret-for-the-test")
    server.start()
    try:
        with override_settings(CACHES=caches_for(server.url)):
            both_clients_work()
    finally:
        server.stop()


def tls_server_binary() -> str:
    """Return Debian's redis-server, which is built with TLS (Valkey's wheel is not)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs redis-server; it is missing")
        pytest.skip("needs Debian's redis-server (apt-get install redis-server)")
    return binary


def test_a_tls_redis_works_for_both_clients(tmp_path: Path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "c.pem", "k.pem"))
    ca.cert_pem.write_to_path(ca_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    tls_port = free_port()
    server = RedisProcess(
        tmp_path / "data",
        binary=tls_server_binary(),
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(cert_file),
            "--tls-key-file", str(key_file),
            "--tls-ca-cert-file", str(ca_file),
            "--tls-auth-clients", "no",
        ],
    )  # fmt: skip
    server.start()
    try:
        caches = caches_for(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca_file}")
        with override_settings(CACHES=caches):
            both_clients_work()
            sync_class = connection.get_connection().client.connection_pool
            assert sync_class.connection_class is redis.SSLConnection
    finally:
        server.stop()


def test_a_redis_on_a_unix_socket_works_for_both_clients(tmp_path: Path):
    socket = tmp_path / "redis.sock"
    server = RedisProcess(tmp_path / "data", extra_args=["--unixsocket", str(socket)])
    server.start()
    try:
        with override_settings(CACHES=caches_for(f"unix://{socket}?db=0")):
            both_clients_work()
            pool = connection.get_connection().client.connection_pool
            assert pool.connection_class is redis.UnixDomainSocketConnection
    finally:
        server.stop()
