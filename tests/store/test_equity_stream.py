"""The equity history read for performance: streamed a page at a time, in time order, per quote, up to a
bound; first and last records read on their own. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.risk import RiskStore
from aiotrade.store.tables import EquityRow

START = datetime(2026, 1, 1, tzinfo=UTC)


async def _records(sessions: async_sessionmaker[AsyncSession], count: int, quote: str = "USDT") -> None:
    async with sessions.begin() as session:
        session.add_all(
            EquityRow(account="a", quote=quote, equity=Decimal(1000 + i) / 100, at=START + timedelta(minutes=i))
            for i in range(count)
        )


async def test_pages_hold_every_record_once_in_time_order_and_no_more_than_a_page(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _records(sessions, 25)
    await _records(sessions, 5, quote="BTC")  # another quote's records are not this history
    store = RiskStore(sessions)
    pages = [page async for page in store.equity_pages("a", "USDT", until=START + timedelta(minutes=22), page=7)]
    assert [len(p) for p in pages] == [7, 7, 7, 2]  # up to and including `until`
    records = [record for page in pages for record in page]
    assert [at for at, _ in records] == [START + timedelta(minutes=i) for i in range(23)]
    assert records[-1][1] == Decimal("10.22") and isinstance(records[-1][1], Decimal)


async def test_bounds_are_the_first_and_last_record_of_the_quote(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = RiskStore(sessions)
    assert await store.equity_bounds("a", "USDT") is None
    await _records(sessions, 25)
    await _records(sessions, 30, quote="BTC")
    first, last = await store.equity_bounds("a", "USDT") or (None, None)
    assert (first.at, first.equity) == (START, Decimal("10.00"))
    assert (last.at, last.equity) == (START + timedelta(minutes=24), Decimal("10.24"))
    since = START + timedelta(minutes=10, seconds=30)
    assert await store.first_equity_since("a", since, "USDT") == Decimal("10.11")
