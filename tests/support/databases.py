"""A fresh, migrated database for a test: a SQLite file in the test's directory, or the suite's PostgreSQL
server emptied first (see `tests/conftest.py` for the server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aiotrade.store.db import make_engine, migrate


def database_url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """``kind`` "sqlite" or "postgresql" (a fixture parameter) as a database URL."""
    return (
        f"sqlite+aiosqlite:///{tmp_path / 'test.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    )


async def migrated_engine(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema up to date, from empty (PostgreSQL's public schema is dropped)."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await migrate(engine)
    return engine
