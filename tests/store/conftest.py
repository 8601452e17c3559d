"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.db import make_sessions
from tests.support.databases import database_url, migrated_engine


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = await migrated_engine(database_url(request, request.param, tmp_path))
    yield make_sessions(engine)
    await engine.dispose()
