"""The limits suites' own redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.limits.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()
