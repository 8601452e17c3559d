"""Order and fill events, numbered per account without gaps, for the live stream and its resumption.

Events are written in the same transaction as what they tell (`add_events`), so a client that resumes
from its last sequence number (`?since=`) misses nothing and sees nothing twice. The number is taken from
a per-account counter row in that transaction: concurrent writers of one account queue on that row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.tables import AccountSequenceRow, OrderEventRow


@dataclass(frozen=True, slots=True)
class Event:
    account: str
    seq: int
    kind: str  # order | fill
    client_order_id: str | None
    payload: dict[str, Any]
    at: datetime


async def add_events(
    session: AsyncSession, account: str, items: Sequence[tuple[str, str | None, dict[str, Any]]]
) -> list[int]:
    """Number and add ``items`` ((kind, client order id, payload)) to ``session``'s transaction."""
    if not items:
        return []
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(AccountSequenceRow)
        .values(account=account, last_seq=len(items))
        .on_conflict_do_update(index_elements=["account"], set_={"last_seq": AccountSequenceRow.last_seq + len(items)})
        .returning(AccountSequenceRow.last_seq)
    )
    last = (await session.execute(statement)).scalar_one()
    first = last - len(items) + 1
    now = datetime.now(UTC)
    session.add_all(
        OrderEventRow(account=account, seq=first + i, kind=kind, client_order_id=cid, payload=payload, at=now)
        for i, (kind, cid, payload) in enumerate(items)
    )
    return list(range(first, last + 1))


class EventStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def after(self, account: str, seq: int, *, limit: int = 1000) -> list[Event]:
        """The account's events numbered above ``seq``, oldest first."""
        query = (
            select(OrderEventRow)
            .where(OrderEventRow.account == account, OrderEventRow.seq > seq)
            .order_by(OrderEventRow.seq)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [Event(r.account, r.seq, r.kind, r.client_order_id, r.payload, r.at) for r in rows]

    async def last_seq(self, account: str) -> int:
        async with self._sessions() as session:
            row = await session.get(AccountSequenceRow, account)
        return row.last_seq if row is not None else 0
