"""Risk state shared by every replica: limits, trading state, equity history, recent submissions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.risk import RiskLimits, TradingState, TradingStateView
from aiotrade.store.tables import EquityRow, OrderRow, RiskLimitsRow, TradingStateRow


class RiskStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def limits(self, account: str) -> RiskLimits:
        async with self._sessions() as session:
            row = await session.get(RiskLimitsRow, account)
        return RiskLimits.model_validate(row.limits) if row is not None else RiskLimits()

    async def set_limits(self, account: str, limits: RiskLimits) -> RiskLimits:
        document = limits.model_dump(mode="json")
        async with self._sessions.begin() as session:
            row = await session.get(RiskLimitsRow, account, with_for_update=True)
            if row is None:
                session.add(RiskLimitsRow(account=account, limits=document))
            else:
                row.limits = document
                row.updated_at = datetime.now(UTC)
        return limits

    async def trading_state(self, account: str) -> TradingStateView:
        async with self._sessions() as session:
            row = await session.get(TradingStateRow, account)
        if row is None:
            return TradingStateView(account=account, state=TradingState.ACTIVE, reason=None, changed_at=None)
        return TradingStateView(
            account=account, state=TradingState(row.state), reason=row.reason, changed_at=row.changed_at
        )

    async def set_trading_state(self, account: str, state: TradingState, reason: str | None) -> TradingStateView:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            row = await session.get(TradingStateRow, account, with_for_update=True)
            if row is None:
                session.add(TradingStateRow(account=account, state=state.value, reason=reason, changed_at=now))
            else:
                row.state, row.reason, row.changed_at = state.value, reason, now
        return TradingStateView(account=account, state=state, reason=reason, changed_at=now)

    async def escalate(self, account: str, state: TradingState, reason: str) -> TradingStateView:
        """Move to ``state`` unless already at it or beyond (HALTED > REDUCING > ACTIVE)."""
        order = [TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED]
        current = await self.trading_state(account)
        if order.index(current.state) >= order.index(state):
            return current
        return await self.set_trading_state(account, state, reason)

    async def record_equity(self, account: str, quote: str, equity: Decimal, at: datetime | None = None) -> None:
        async with self._sessions.begin() as session:
            session.add(EquityRow(account=account, quote=quote, equity=equity, at=at or datetime.now(UTC)))

    async def first_equity_since(self, account: str, since: datetime) -> Decimal | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(EquityRow.equity)
                .where(EquityRow.account == account, EquityRow.at >= since)
                .order_by(EquityRow.at)
                .limit(1)
            )

    async def equity_history(self, account: str, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        query = select(EquityRow.at, EquityRow.equity).where(EquityRow.account == account)
        if since is not None:
            query = query.where(EquityRow.at >= since)
        async with self._sessions() as session:
            return [(at, equity) for at, equity in (await session.execute(query.order_by(EquityRow.at))).all()]

    async def peak_equity(self, account: str) -> Decimal | None:
        # Decimal text does not order numerically in SQL: take the maximum in Python.
        history = await self.equity_history(account)
        return max((equity for _, equity in history), default=None)

    async def orders_submitted_since(self, account: str, since: datetime) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OrderRow)
                .where(OrderRow.account == account, OrderRow.created_at >= since)
            )
        return int(count or 0)
