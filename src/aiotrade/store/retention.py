"""Retention: what the store keeps and for how long, and the purge that enforces it.

Idempotency keys are kept for their own retention (at least 24 h, set when claimed); audit rows, equity
history, stream events and interval claims for the configured number of days. The running equity peak
and every order and fill are kept: they are the account's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.tables import AuditRow, EquityRow, IdempotencyKeyRow, JobRunRow, OrderEventRow


@dataclass(frozen=True, slots=True)
class Retention:
    audit: timedelta
    equity: timedelta
    events: timedelta
    job_runs: timedelta


async def purge(sessions: async_sessionmaker[AsyncSession], retention: Retention) -> dict[str, int]:
    """Delete what is past its retention; returns how many rows of each kind went."""
    now = datetime.now(UTC)
    statements = {
        "idempotency_keys": delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at < now),
        "audit_log": delete(AuditRow).where(AuditRow.at < now - retention.audit),
        "equity_history": delete(EquityRow).where(EquityRow.at < now - retention.equity),
        "order_events": delete(OrderEventRow).where(OrderEventRow.at < now - retention.events),
        "job_runs": delete(JobRunRow).where(JobRunRow.at < now - retention.job_runs),
    }
    removed: dict[str, int] = {}
    for name, statement in statements.items():  # one short transaction each: none holds locks for long
        async with sessions.begin() as session:
            removed[name] = (await session.execute(statement)).rowcount or 0
    return removed
