"""Fixtures of the exchange tests: a clean database on the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis as sync_redis
from redis.asyncio import Redis


@pytest.fixture
def clean_redis_url(redis_url: str) -> str:
    """The session's redis-server with its database emptied (no buckets, pauses or members left over)."""
    with sync_redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


@pytest.fixture
async def redis(clean_redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's redis-server, on an empty database."""
    client = Redis.from_url(clean_redis_url)
    yield client
    await client.aclose()
