"""Portfolio state: target weights, the signal book, rebalance records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.portfolio import Signal
from aiotrade.store.tables import RebalanceRow, SignalRow, TargetRow


class PortfolioStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def targets(self, account: str) -> tuple[dict[str, Decimal], datetime | None, str | None]:
        async with self._sessions() as session:
            rows = list((await session.scalars(select(TargetRow).where(TargetRow.account == account))).all())
        if not rows:
            return {}, None, None
        return {r.symbol: r.weight for r in rows}, max(r.updated_at for r in rows), rows[0].source

    async def set_targets(self, account: str, weights: Mapping[str, Decimal], source: str) -> datetime:
        """Replace the account's targets in one transaction (readers never see half of them)."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            await session.execute(delete(TargetRow).where(TargetRow.account == account))
            session.add_all(
                TargetRow(account=account, symbol=symbol, weight=weight, source=source, updated_at=now)
                for symbol, weight in weights.items()
            )
        return now

    async def upsert_signals(self, account: str, signals: Sequence[Signal]) -> int:
        """Keep the newest signal per (strategy, symbol); returns how many incoming ones were superseded."""
        newest: dict[tuple[str, str], Signal] = {}
        for signal in signals:
            key = (signal.strategy_id, signal.symbol)
            if key not in newest or signal.timestamp > newest[key].timestamp:
                newest[key] = signal
        collapsed = len(signals) - len(newest)
        async with self._sessions.begin() as session:
            for (strategy, symbol), signal in newest.items():
                row = await session.get(SignalRow, (account, strategy, symbol), with_for_update=True)
                emitted = signal.timestamp
                expires = emitted.timestamp() + signal.ttl_s
                values = {
                    "direction": signal.direction.value,
                    "strength": signal.strength,
                    "confidence": signal.confidence,
                    "emitted_at": emitted,
                    "expires_at": datetime.fromtimestamp(expires, tz=UTC),
                }
                if row is None:
                    session.add(SignalRow(account=account, strategy_id=strategy, symbol=symbol, **values))
                elif emitted >= row.emitted_at:
                    for name, value in values.items():
                        setattr(row, name, value)
                else:
                    collapsed += 1  # older than what we hold
        return collapsed

    async def active_signals(self, account: str, now: datetime) -> tuple[list[SignalRow], int]:
        """Unexpired signals; expired ones are deleted and counted."""
        async with self._sessions.begin() as session:
            expired = await session.execute(
                delete(SignalRow).where(SignalRow.account == account, SignalRow.expires_at <= now)
            )
            rows = list((await session.scalars(select(SignalRow).where(SignalRow.account == account))).all())
        return rows, expired.rowcount or 0

    async def record_rebalance(self, account: str, plan_id: str, executed: bool, plan: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            session.add(RebalanceRow(account=account, plan_id=plan_id, executed=executed, plan=plan))

    async def last_rebalance(self, account: str) -> datetime | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(RebalanceRow.at)
                .where(RebalanceRow.account == account, RebalanceRow.executed.is_(True))
                .order_by(RebalanceRow.at.desc())
                .limit(1)
            )
