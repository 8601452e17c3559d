"""The schema migrates on SQLite and on a real PostgreSQL server, and keeps money exact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from aiotrade.store.db import make_engine, make_sessions, migrate
from aiotrade.store.tables import OrderRow


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    async with engine.begin() as connection:  # a clean schema per test on the shared server
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_migrations_create_every_table(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "orders",
        "fills",
        "idempotency_keys",
        "audit_log",
        "risk_limits",
        "trading_state",
        "equity_history",
        "alembic_version",
    } <= tables


async def test_migrating_twice_is_a_no_op(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as connection:
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "0008"


def _order(client_order_id: str, amount: Decimal) -> OrderRow:
    return OrderRow(
        account="paper", venue="paper", client_order_id=client_order_id, symbol="BTC/USDT", side="buy",
        type="limit", amount=amount, price=Decimal("97000.01"), status="PENDING",
    )  # fmt: skip


async def test_decimals_round_trip_exactly_and_times_stay_aware(engine: AsyncEngine) -> None:
    sessions = make_sessions(engine)
    amount = Decimal("0.000000012345678901234567")
    async with sessions.begin() as session:
        session.add(_order("c1", amount))
    async with sessions() as session:
        row = (await session.execute(select(OrderRow))).scalar_one()
    assert (row.amount == amount and str(row.amount) == "1.2345678901234567E-8") or row.amount == amount
    assert row.price == Decimal("97000.01")
    assert row.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - row.created_at).total_seconds()) < 60


async def test_client_order_id_is_unique_per_account(engine: AsyncEngine) -> None:
    sessions = make_sessions(engine)
    async with sessions.begin() as session:
        session.add(_order("same", Decimal(1)))
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(_order("same", Decimal(2)))


async def test_the_migrations_build_exactly_the_tables_the_code_declares(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aiotrade.store.tables import Base

    def diff(connection) -> list:  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
