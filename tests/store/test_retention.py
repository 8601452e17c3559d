"""Retention: the purge deletes what is past its documented retention and nothing else, on SQLite and
PostgreSQL; orders, their audit trail within retention, fills and the equity peak stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.app import retention as retention_of
from aiotrade.config import RetentionConfig, Settings
from aiotrade.store.orders import OrderStore
from aiotrade.store.retention import purge
from aiotrade.store.tables import (
    AuditRow,
    EquityPeakRow,
    EquityRow,
    IdempotencyKeyRow,
    JobRunRow,
    OrderEventRow,
    OrderRow,
)
from tests.store.test_order_store import pending

NOW = datetime.now(UTC)
RETENTION = RetentionConfig(audit_days=30, equity_days=60, events_days=7, job_runs_days=2)


def key(name: str, expires_at: datetime) -> IdempotencyKeyRow:
    return IdempotencyKeyRow(
        account="paper", key=name, request_hash="h", state="completed", client_order_id="c-" + name,
        locked_until=NOW, expires_at=expires_at,
    )  # fmt: skip


async def test_the_purge_removes_only_what_is_past_its_retention(sessions: async_sessionmaker[AsyncSession]) -> None:
    old_order, _ = await OrderStore(sessions).insert_pending(pending("old-order"))  # with its audit row
    days = timedelta(days=1)
    async with sessions.begin() as session:
        await session.execute(update(OrderRow).values(created_at=NOW - 400 * days))
        await session.execute(update(AuditRow).values(at=NOW - 31 * days))
        session.add_all(
            [
                key("expired", NOW - timedelta(seconds=1)),
                key("live", NOW + days),
                AuditRow(account="paper", event="created", at=NOW - 29 * days),
                EquityRow(account="paper", at=NOW - 61 * days, quote="USDT", equity=Decimal(1), bucket=1),
                EquityRow(account="paper", at=NOW - 59 * days, quote="USDT", equity=Decimal(2), bucket=2),
                EquityPeakRow(account="paper", quote="USDT", peak=Decimal(2), at=NOW - 400 * days),
                OrderEventRow(account="paper", seq=101, kind="order", payload={}, at=NOW - 8 * days),
                OrderEventRow(account="paper", seq=102, kind="order", payload={}, at=NOW - 6 * days),
                JobRunRow(job="equity-recorder", interval=1, holder="h", token=1, at=NOW - 3 * days),
                JobRunRow(job="equity-recorder", interval=2, holder="h", token=1, at=NOW - 1 * days),
            ]
        )

    removed = await purge(sessions, retention_of(Settings(retention=RETENTION)))

    assert removed == {"idempotency_keys": 1, "audit_log": 1, "equity_history": 1, "order_events": 1, "job_runs": 1}
    async with sessions() as session:

        async def count(column: object) -> int:
            return int(await session.scalar(select(func.count(column))))  # type: ignore[arg-type]

        assert await session.scalar(select(IdempotencyKeyRow.key)) == "live"
        assert await session.scalar(select(EquityRow.bucket)) == 2
        assert set(await session.scalars(select(OrderEventRow.seq))) == {1, 102}  # 1: the order's own, today
        assert await session.scalar(select(JobRunRow.interval)) == 2
        assert await count(AuditRow.id) == 1
        assert await count(OrderRow.id) == 1  # orders are the account's record: never purged
        assert await count(EquityPeakRow.peak) == 1  # the drawdown's reference stays
    assert old_order.client_order_id == "old-order"
    assert await purge(sessions, retention_of(Settings(retention=RETENTION))) == dict.fromkeys(removed, 0)
