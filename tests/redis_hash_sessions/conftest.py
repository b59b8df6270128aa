from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests.redis_process import RedisProcess
from tests.topologies import ClusterSet, SentinelSet, Single, Topology


@pytest.fixture(scope="session", params=["single", "sentinel", "cluster"])
def redis_topology(
    request: pytest.FixtureRequest,
    redis_server: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Topology]:
    """Run each of the engine's tests on one Redis, behind Sentinel, on a cluster."""
    if request.param == "single":
        yield Single(redis_server)
        return
    topology: SentinelSet | ClusterSet
    if request.param == "sentinel":
        topology = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    else:
        topology = ClusterSet(tmp_path_factory.mktemp("cluster"))
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="package", autouse=True)
def _sessions_in_test_redis(redis_topology: Topology) -> Iterator[None]:
    """
    Point sessions at this directory's topology (the root conftest's, again).

    The root's, set up first by other directories, would keep their single
    Redis here: pytest sets a fixture up again for a new parameter only
    where the parameter's fixture is defined. Package-scoped, so that the
    tests after this directory's are back on the root's.
    """
    with override_settings(CACHES=redis_topology.caches()):
        yield
