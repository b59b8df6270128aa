"""
The benchmark's settings for our engine under sync, gthread and ASGI workers.

The same for all three: under ASGI the twins of the views serve, and the
session and authentication middleware run on the event loop.
"""

import os

os.environ["BENCH_ENGINE"] = "ours"

from bench.settings import *  # noqa: F403

MIDDLEWARE = [
    "sessionsite.twins.TwinsMiddleware",
    "redis_hash_sessions.middleware.SessionMiddleware",
    "sessionsite.on_the_loop.AuthenticationMiddleware",
]
ROOT_URLCONF = "bench.asgi_urls"
