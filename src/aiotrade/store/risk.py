"""Risk state shared by every replica: limits, trading state, equity history and its running peak.

`change_trading_state` is the one way the trading state is written — by `RiskStore` (an operator, the
loss-limit monitor) and by `GateStore` inside the account's critical section (the kill switch) alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.risk import RiskLimits, TradingState, TradingStateView
from aiotrade.store.tables import EquityPeakRow, EquityRow, RiskLimitsRow, TradingStateRow


async def change_trading_state(
    session: AsyncSession, account: str, state: TradingState, reason: str | None, *, only_escalate: bool = False
) -> TradingStateView:
    """Set the account's trading state in ``session``'s transaction (committed with it) and return it.

    With ``only_escalate`` the state only moves up (HALTED > REDUCING > ACTIVE) and the stored one is returned
    when it is already there or beyond. Writers racing to create the row all succeed: one inserts, the others
    wait for it, then lock it and apply their change to it in turn — no IntegrityError, no retry.
    """
    now = datetime.now(UTC)
    # A row lock cannot guard a row that does not exist yet; the unique key can: a conflicting insert waits for
    # the other writer's transaction and then does nothing, leaving a row to lock.
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = await session.scalar(
        insert(TradingStateRow)
        .values(account=account, state=state.value, reason=reason, changed_at=now)
        .on_conflict_do_nothing(index_elements=[TradingStateRow.account])
        .returning(TradingStateRow.account)
    )
    if inserted is None:
        # The conflicting row exists by now (its writer committed; rows are never deleted): lock it.
        row = (
            await session.execute(
                select(TradingStateRow)
                .where(TradingStateRow.account == account)
                .with_for_update()
                .execution_options(populate_existing=True)  # the session may hold an older copy (the gate's read)
            )
        ).scalar_one()
        if only_escalate and _SEVERITY.index(TradingState(row.state)) >= _SEVERITY.index(state):
            return TradingStateView(
                account=account, state=TradingState(row.state), reason=row.reason, changed_at=row.changed_at
            )
        row.state, row.reason, row.changed_at = state.value, reason, now
    return TradingStateView(account=account, state=state, reason=reason, changed_at=now)


# Equity records read per round trip when a whole history is streamed (performance).
EQUITY_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class EquityRecord:
    at: datetime
    equity: Decimal


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
        async with self._sessions.begin() as session:
            return await change_trading_state(session, account, state, reason)

    async def escalate(self, account: str, state: TradingState, reason: str) -> TradingStateView:
        """Move to ``state`` unless already at it or beyond (HALTED > REDUCING > ACTIVE), atomically."""
        async with self._sessions.begin() as session:
            return await change_trading_state(session, account, state, reason, only_escalate=True)

    async def record_equity(
        self, account: str, quote: str, equity: Decimal, at: datetime | None = None, *, bucket: int | None = None
    ) -> bool:
        """Append an equity record and raise the running peak with it, in one transaction.

        ``bucket`` names the recording interval: a second record for the same account and bucket (another
        replica, a retried job) is refused and False returned.
        """
        at = at or datetime.now(UTC)
        try:
            async with self._sessions.begin() as session:
                session.add(EquityRow(account=account, quote=quote, equity=equity, at=at, bucket=bucket))
                peak = await session.get(EquityPeakRow, (account, quote), with_for_update=True)
                if peak is None:
                    session.add(EquityPeakRow(account=account, quote=quote, peak=equity, at=at))
                elif equity > peak.peak:
                    peak.peak, peak.at = equity, at
        except IntegrityError:
            return False
        return True

    async def first_equity_since(self, account: str, since: datetime, quote: str | None = None) -> Decimal | None:
        query = select(EquityRow.equity).where(EquityRow.account == account, EquityRow.at >= since)
        if quote is not None:
            query = query.where(EquityRow.quote == quote)
        async with self._sessions() as session:
            return await session.scalar(query.order_by(EquityRow.at).limit(1))

    async def equity_bounds(self, account: str, quote: str) -> tuple[EquityRecord, EquityRecord] | None:
        """The first and the last equity record of the account in ``quote``; None when there is none."""
        async with self._sessions() as session:
            bounds = []
            for order in (EquityRow.at.asc(), EquityRow.at.desc()):
                row = (
                    await session.execute(
                        select(EquityRow.at, EquityRow.equity)
                        .where(EquityRow.account == account, EquityRow.quote == quote)
                        .order_by(order)
                        .limit(1)
                    )
                ).first()
                if row is None:
                    return None
                bounds.append(EquityRecord(at=row.at, equity=row.equity))
        return bounds[0], bounds[1]

    async def equity_pages(
        self, account: str, quote: str, *, until: datetime, page: int = EQUITY_PAGE
    ) -> AsyncGenerator[Sequence[tuple[datetime, Decimal]], None]:
        """The account's equity records in ``quote`` up to ``until``, in time order, ``page`` rows at a time:
        streamed from the database, so two years of minute records are never in memory as rows at once."""
        query = (
            select(EquityRow.at, EquityRow.equity)
            .where(EquityRow.account == account, EquityRow.quote == quote, EquityRow.at <= until)
            .order_by(EquityRow.at)
            .execution_options(yield_per=page)
        )
        async with self._sessions() as session:
            result = await session.stream(query)
            async for rows in result.partitions(page):
                yield [(at, equity) for at, equity in rows]

    async def equity_history(self, account: str, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        query = select(EquityRow.at, EquityRow.equity).where(EquityRow.account == account)
        if since is not None:
            query = query.where(EquityRow.at >= since)
        async with self._sessions() as session:
            return [(at, equity) for at, equity in (await session.execute(query.order_by(EquityRow.at))).all()]

    async def peak_equity(self, account: str, quote: str) -> Decimal | None:
        """The highest equity ever recorded for the account in ``quote`` (kept as a running value)."""
        async with self._sessions() as session:
            row = await session.get(EquityPeakRow, (account, quote))
        return row.peak if row is not None else None


_SEVERITY = [TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED]
