"""
Under ASGI, the session's part of every page runs on the event loop.

Django's AsyncClient drives the site's ASGI handler in-process. Every call
into asgiref's SyncToAsync (a thread hop) is recorded by the name of what it
runs, and every Redis command by the client and the thread that sent it:
the session's part of a request is zero hops when the sync Redis client
sends nothing and every command leaves from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
import redis
import redis.asyncio
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.test import AsyncClient, Client

from redis_hash_sessions import connection, keys

# Imported here, not in a test: its django.setup() configures logging
# again, which would drop the handler of a test's caplog.
from sessionsite.asgi import application
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("close_async_redis", "close_async_db"),
]

JSON = {"accept": "application/json"}
# The thread hops that remain, none of them the session's. Django's
# security, CSP, CSRF and clickjacking middleware run each hook in a thread
# (sessionsite/on_the_loop.py says why they stay as they are); besides
# those: a signal's sync receivers (request_started's closing of old
# database connections), the user's query (the async ORM runs in a thread),
# and the response's close.
DJANGOS_MIDDLEWARE = (
    "SecurityMiddleware.",
    "ContentSecurityPolicyMiddleware.",
    "CsrfViewMiddleware.",
    "XFrameOptionsMiddleware.",
)
RECEIVERS = "Signal.asend.<locals>.sync_send"
USER_QUERY = "QuerySet.get"
CLOSE = "HttpResponseBase.close"
PASSWORD_SAVE = "SetPasswordForm.save"


@dataclass
class Trace:
    """What one request did: its thread hops and its Redis commands."""

    loop_thread: int = 0
    hops: list[str] = field(default_factory=list)
    # Every function handed to a thread pool, SyncToAsync's hops among them.
    executor_calls: list[str] = field(default_factory=list)
    sync_commands: list[str] = field(default_factory=list)
    commands_off_the_loop: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def hops_besides_djangos_middleware(self) -> list[str]:
        return [hop for hop in self.hops if not hop.startswith(DJANGOS_MIDDLEWARE)]

    def clear(self) -> None:
        self.loop_thread = threading.get_ident()
        for recorded in (
            self.hops,
            self.executor_calls,
            self.sync_commands,
            self.commands_off_the_loop,
            self.commands,
        ):
            recorded.clear()


@pytest.fixture
def trace(monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis) -> Trace:
    # Loaded as after a process's first use: no NOSCRIPT fallback counted.
    for lua in connection.SCRIPTS:
        redis_client.script_load(lua)
    recorded = Trace()
    hop = SyncToAsync.__call__
    sync_execute = redis.Redis.execute_command
    async_execute = redis.asyncio.Redis.execute_command

    async def counting_hop(
        self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any
    ) -> Any:
        # Never repr(): a queryset's would run a query.
        name = getattr(self.func, "__qualname__", None) or type(self.func).__name__
        recorded.hops.append(name)
        return await hop(self, *args, **kwargs)

    def sync_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if self is not redis_client:
            recorded.sync_commands.append(str(args[0]))
        return sync_execute(self, *args, **options)

    async def async_command(
        self: redis.asyncio.Redis, *args: Any, **options: Any
    ) -> Any:
        recorded.commands.append(str(args[0]))
        if threading.get_ident() != recorded.loop_thread:
            recorded.commands_off_the_loop.append(str(args[0]))
        return await async_execute(self, *args, **options)

    in_executor = asyncio.BaseEventLoop.run_in_executor

    def counting_executor(
        self: asyncio.BaseEventLoop, executor: Any, func: Any, *args: Any
    ) -> Any:
        named = getattr(func, "func", func)  # asgiref hands over a partial
        recorded.executor_calls.append(
            getattr(named, "__qualname__", None) or type(named).__name__
        )
        return in_executor(self, executor, func, *args)

    sync_pipeline = redis.client.Pipeline.execute
    async_pipeline = redis.asyncio.client.Pipeline.execute

    def queued(pipe: Any) -> str:
        return "+".join(str(c[0][0]) for c in pipe.command_stack)

    def sync_pipeline_execute(
        self: redis.client.Pipeline, *args: Any, **kwargs: Any
    ) -> Any:
        recorded.sync_commands.append(queued(self))
        return sync_pipeline(self, *args, **kwargs)

    async def async_pipeline_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.commands.append(queued(self))
        if threading.get_ident() != recorded.loop_thread:
            recorded.commands_off_the_loop.append(queued(self))
        return await async_pipeline(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", sync_pipeline_execute)
    monkeypatch.setattr(
        redis.asyncio.client.Pipeline, "execute", async_pipeline_execute
    )
    monkeypatch.setattr(SyncToAsync, "__call__", counting_hop)
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", counting_executor)
    monkeypatch.setattr(redis.Redis, "execute_command", sync_command)
    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", async_command)
    recorded.clear()
    return recorded


def assert_session_on_the_loop(trace: Trace, *, round_trips: int) -> None:
    # No thread but SyncToAsync's hops, which the hop tests name one by one.
    assert len(trace.executor_calls) == len(trace.hops)
    assert trace.sync_commands == []
    assert trace.commands_off_the_loop == []
    assert len(trace.commands) == round_trips, trace.commands


async def signed_in(trace: Trace) -> AsyncClient:
    client = AsyncClient()
    response = await client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    trace.clear()
    return client


async def test_a_login_runs_the_session_on_the_loop(user, trace):
    client = AsyncClient()
    response = await client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert_session_on_the_loop(trace, round_trips=1)


async def test_a_login_checks_the_password_in_one_thread_on_purpose(user, trace):
    client = AsyncClient()
    await client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert trace.hops.count("BaseForm.is_valid") == 1


async def test_a_dashboard_runs_the_session_on_the_loop(user, trace):
    client = await signed_in(trace)
    response = await client.get("/dashboard/")
    assert response.status_code == HTTPStatus.OK
    assert_session_on_the_loop(trace, round_trips=4)


async def test_a_visit_runs_the_session_on_the_loop(user, trace):
    client = await signed_in(trace)
    response = await client.get("/visits/", headers=JSON)
    assert response.json() == {"visits": 1, "username": "ada"}
    assert_session_on_the_loop(trace, round_trips=1)


async def test_a_logout_runs_the_session_on_the_loop(user, trace):
    client = await signed_in(trace)
    response = await client.post("/logout/")
    assert response.status_code == HTTPStatus.FOUND
    assert_session_on_the_loop(trace, round_trips=1)


async def test_a_visit_hops_only_for_django_and_the_user_query(user, trace):
    client = await signed_in(trace)
    await client.get("/visits/", headers=JSON)
    assert trace.hops_besides_djangos_middleware() == [RECEIVERS, USER_QUERY, CLOSE]


async def test_a_dashboard_hops_only_for_django_and_the_user_query(user, trace):
    client = await signed_in(trace)
    await client.get("/dashboard/")
    # login_required's test of the user is a sync function.
    assert trace.hops_besides_djangos_middleware() == [
        RECEIVERS,
        USER_QUERY,
        "login_required.<locals>.<lambda>",
        CLOSE,
    ]


async def test_a_logout_hops_only_for_django_the_user_query_and_its_signal(user, trace):
    client = await signed_in(trace)
    await client.post("/logout/")
    # user_logged_out's receivers (the site's log line, axes) are sync.
    assert trace.hops_besides_djangos_middleware() == [
        RECEIVERS,
        USER_QUERY,
        RECEIVERS,
        CLOSE,
    ]


async def test_a_login_hops_for_the_credentials_and_its_signal(user, trace):
    client = AsyncClient()
    await client.post("/login/", {"username": "ada", "password": PASSWORD})
    # The credentials' check, password hash included, in one thread on
    # purpose; user_logged_in's receivers (the log line, axes) are sync.
    assert trace.hops_besides_djangos_middleware() == [
        RECEIVERS,
        "BaseForm.is_valid",
        RECEIVERS,
        CLOSE,
    ]


async def test_djangos_middleware_hops_eight_times_per_page(user, trace):
    client = await signed_in(trace)
    await client.get("/visits/", headers=JSON)
    theirs = [hop for hop in trace.hops if hop.startswith(DJANGOS_MIDDLEWARE)]
    assert len(theirs) == 8


async def test_a_login_over_the_cap_ends_the_oldest_session_on_the_loop(
    user, trace, settings
):
    settings.SESSION_MAX_PER_USER = 1
    first = await signed_in(trace)
    second = AsyncClient()
    await second.post("/login/", {"username": "ada", "password": PASSWORD})
    # The create, then the user's index and sessions read, then the end.
    assert_session_on_the_loop(trace, round_trips=4)
    ended = await first.get("/dashboard/")
    assert ended.status_code == HTTPStatus.FOUND
    assert ended["Location"] == "/login/?next=/dashboard/"


async def test_ending_the_other_sessions_runs_the_session_on_the_loop(user, trace):
    other = await signed_in(trace)
    this = await signed_in(trace)
    response = await this.post("/sessions/end-others/")
    assert response.status_code == HTTPStatus.FOUND
    # Load this session; read the user's index; end the others.
    assert_session_on_the_loop(trace, round_trips=3)
    ended = await other.get("/dashboard/")
    assert ended["Location"] == "/login/?next=/dashboard/"


async def test_ending_one_other_session_runs_the_session_on_the_loop(user, trace):
    other = await signed_in(trace)
    this = await signed_in(trace)
    key_hash = keys.key_hash(other.cookies[settings.SESSION_COOKIE_NAME].value)
    response = await this.post(f"/sessions/{key_hash}/end/")
    assert response.status_code == HTTPStatus.FOUND
    # Load this session; end the named one.
    assert_session_on_the_loop(trace, round_trips=2)
    ended = await other.get("/dashboard/")
    assert ended["Location"] == "/login/?next=/dashboard/"


async def test_the_lifespan_shutdown_closes_the_loops_redis_connections():
    client = (await connection.get_async_connection()).client
    await client.ping()
    lifespan = ApplicationCommunicator(application, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output() == {"type": "lifespan.startup.complete"}
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output() == {"type": "lifespan.shutdown.complete"}
    pool = client.connection_pool
    assert [c for c in pool._available_connections if c.is_connected] == []
    assert (await connection.get_async_connection()).client is not client


async def change_password(client: AsyncClient) -> int:
    response = await client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new and long passphrase",
            "new_password2": "a new and long passphrase",
        },
    )
    return response.status_code


async def test_a_password_change_runs_the_session_on_the_loop(user, trace):
    client = await signed_in(trace)
    assert await change_password(client) == HTTPStatus.FOUND
    # The session's read, the user's index, ending the others (none here),
    # the new key, and the new password's hash in the session.
    assert_session_on_the_loop(trace, round_trips=4)
    assert trace.commands == ["HGETALL", "ZRANGE", "EVALSHA", "EVALSHA"]


async def test_a_password_change_checks_and_saves_in_threads_on_purpose(user, trace):
    client = await signed_in(trace)
    await change_password(client)
    assert trace.hops.count("BaseForm.is_valid") == 1
    assert trace.hops.count(PASSWORD_SAVE) == 1


async def test_a_password_change_ending_another_session_runs_it_on_the_loop(
    user, trace
):
    client, _ = await signed_in(trace), await signed_in(trace)
    assert await change_password(client) == HTTPStatus.FOUND
    assert_session_on_the_loop(trace, round_trips=5)
    assert trace.commands == ["HGETALL", "ZRANGE", "EVALSHA", "EVALSHA", "EVALSHA"]


async def test_a_password_change_signs_out_the_other_sessions_only(user, trace):
    client, other = await signed_in(trace), await signed_in(trace)
    assert await change_password(client) == HTTPStatus.FOUND
    visit = await client.get("/visits/", headers=JSON)
    assert visit.json()["username"] == "ada"
    elsewhere = await other.get("/visits/", headers=JSON)
    assert elsewhere.status_code == HTTPStatus.FOUND
    assert elsewhere["Location"].startswith("/login/")


async def test_a_password_change_hops_for_the_check_and_save_and_djangos_parts(
    user, trace
):
    client = await signed_in(trace)
    await change_password(client)
    assert trace.hops_besides_djangos_middleware() == [
        RECEIVERS,
        USER_QUERY,
        "login_required.<locals>.<lambda>",
        "BaseForm.is_valid",
        PASSWORD_SAVE,
        CLOSE,
    ]


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
async def test_an_outage_while_ending_the_others_leaves_the_password_as_it_was(
    user, redis_client, interface
):
    if interface == "wsgi":
        client: Any = Client()
        post = sync_to_async(client.post)
    else:
        client = AsyncClient()
        post = client.post
    for browser_post in (post, AsyncClient().post):
        await browser_post("/login/", {"username": "ada", "password": PASSWORD})
    # Reads go on; the script that ends the other session waits out the
    # socket timeout: an outage at exactly that step.
    redis_client.client_pause(3000, all=False)
    try:
        response = await post(
            "/password/",
            {
                "old_password": PASSWORD,
                "new_password1": "a new and long passphrase",
                "new_password2": "a new and long passphrase",
            },
        )
    finally:
        redis_client.client_unpause()
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    await user.arefresh_from_db()
    assert await sync_to_async(user.check_password)(PASSWORD)


async def test_a_failed_close_at_shutdown_is_logged_and_reported(monkeypatch, caplog):
    async def failing() -> int:
        raise redis.ConnectionError("Timed out closing connection")

    monkeypatch.setattr(connection, "close_async_connections", failing)
    lifespan = ApplicationCommunicator(application, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    await lifespan.receive_output()
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output() == {
        "type": "lifespan.shutdown.failed",
        "message": "Timed out closing connection",
    }
    monkeypatch.undo()  # before close_async_redis closes this loop's clients
    assert "Closing the session store's clients failed." in caplog.text
