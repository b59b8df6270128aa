from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_process import RedisProcess
from tests.topologies import SentinelSet, Single, Topology


@pytest.fixture(scope="session", params=["single", "sentinel"])
def redis_topology(
    request: pytest.FixtureRequest,
    redis_server: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Topology]:
    """Run each of the engine's tests on one Redis, then behind Sentinel."""
    if request.param == "single":
        yield Single(redis_server)
        return
    sentinels = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    sentinels.start()
    yield sentinels
    sentinels.stop()
