"""
ASGI entry point; the session engine and middleware are natively async.

Django answers HTTP; the ASGI lifespan's shutdown closes the session
engine's async Redis connections. uvicorn runs that shutdown on the
worker's event loop when gunicorn stops it, and then re-raises the
SIGTERM, which ends the process before the loop could close them itself.
"""

import logging
import os
from typing import Any

from django.core.asgi import get_asgi_application

from redis_hash_sessions import connection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessionsite.settings")

django_application = get_asgi_application()
logger = logging.getLogger("redis_hash_sessions")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)


async def lifespan(receive: Any, send: Any) -> None:
    """Answer the server's startup; at its shutdown, close the Redis connections."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                closed = await connection.close_async_connections()
            except Exception as exc:
                logger.exception("Closing the session store's clients failed.")
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            else:
                logger.info("Closed %d session store client(s) of this worker.", closed)
                await send({"type": "lifespan.shutdown.complete"})
            return
