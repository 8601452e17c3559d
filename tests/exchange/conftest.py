"""Fixtures of the exchange tests: a clean database on the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's redis-server, whose database starts empty (no buckets, pauses or members
    left over from another test)."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
