"""Engines, sessions and migrations. SQLite (aiosqlite) by default, PostgreSQL (asyncpg) in production."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every replica: only one of them migrates at a time.
_MIGRATION_LOCK_ID = 0x41494F54
# How long a process waits for another's migrations on the same SQLite file before it gives up.
MIGRATION_LOCK_TIMEOUT_S = 120.0


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; processes starting together take turns: a PostgreSQL advisory lock,
    or for a SQLite file an exclusive lock on a file beside it (``serve --workers N`` migrates in every worker)."""
    async with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        await connection.run_sync(_upgrade, revision)


@contextlib.asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine, timeout_s: float = MIGRATION_LOCK_TIMEOUT_S) -> AsyncIterator[None]:
    """Hold ``<database>.migrate.lock`` (flock) for the block; waits without blocking the event loop."""
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    descriptor = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        give_up = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # another process migrates: poll, never block the loop
                if time.monotonic() > give_up:
                    held = f"another process held the migration lock of {database} for {timeout_s:g} s"
                    raise TimeoutError(held) from None
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)  # closing releases the lock too, should the process die holding it


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
