"""The risk gate's critical section: the checks and the PENDING insert for one account, serialised.

`admit` runs one short transaction per order that holds the account's lock — a PostgreSQL advisory
transaction lock keyed by the account (other accounts never wait), or on SQLite a `BEGIN IMMEDIATE`
(SQLite has one writer at a time anyway). Inside it reads what other orders of the account are doing
(trading state, submissions in the last minute, orders still in flight), asks the caller's pure
``decide`` function, and — only if it approves — records the order as PENDING with its audit, so the
next order of the account sees it. Nothing in it waits on an exchange: balances and prices are read
before. Within one process, orders of one account also queue on an asyncio lock first, so they hold
one database connection between them rather than one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.orders import UNSETTLED_STATUSES, OrderStatus
from aiotrade.models.risk import TradingState, TradingStateView
from aiotrade.store.orders import NewOrder, StoredOrder, add_pending, stored
from aiotrade.store.risk import change_trading_state
from aiotrade.store.tables import IdempotencyKeyRow, OrderRow, TradingStateRow

Verdict = TypeVar("Verdict")
SUBMIT_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class GateInputs:
    """What the store knows of an account's other orders, as of the critical section."""

    state: TradingStateView
    submitted_last_minute: int
    in_flight: tuple[StoredOrder, ...]
    # Our buy orders resting on the venue (OPEN, PARTIALLY_FILLED): what they may still buy counts in positions.
    resting_buys: tuple[StoredOrder, ...] = ()


@dataclass(frozen=True, slots=True)
class Admission(Generic[Verdict]):
    verdict: Verdict | None  # None when the order was already recorded (nothing was decided)
    order: StoredOrder | None  # the PENDING order, when admitted
    existing: bool = False  # the client id was already recorded: an earlier attempt got this far
    orders: tuple[StoredOrder, ...] = ()  # every order admitted together (an OCO's legs), `order` first


@dataclass(frozen=True, slots=True)
class KeyToForget:
    key: str
    owner: str


class GateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def inputs(self, account: str, *, view_started_at: datetime) -> GateInputs:
        """The same inputs `admit` reads, without the lock (for a check that only reads)."""
        async with self._sessions() as session:
            return await _inputs(session, account, view_started_at)

    async def admit(
        self,
        order: NewOrder,
        *,
        view_started_at: datetime,
        decide: Callable[[GateInputs], Verdict],
        approved: Callable[[Verdict], bool],
        forget_on_refusal: KeyToForget | None = None,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> Admission[Verdict]:
        """Decide and, if approved, record ``order`` as PENDING — one critical section for its account.

        Orders in flight are those PENDING or UNKNOWN, and those the exchange acknowledged at or after
        ``view_started_at`` (the balances read before cannot reflect them). A refusal deletes the
        idempotency key named by ``forget_on_refusal`` in the same transaction, as if the request never came.
        """
        return await self.admit_all(
            [order],
            view_started_at=view_started_at,
            decide=decide,
            approved=approved,
            forget_on_refusal=forget_on_refusal,
            events=events,
        )

    async def admit_all(
        self,
        orders: Sequence[NewOrder],
        *,
        view_started_at: datetime,
        decide: Callable[[GateInputs], Verdict],
        approved: Callable[[Verdict], bool],
        forget_on_refusal: KeyToForget | None = None,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> Admission[Verdict]:
        """`admit` for orders of one account that stand or fall together (an OCO's legs): one decision,
        all recorded or none. If any was recorded already, those recorded are returned and nothing is
        decided."""
        account = orders[0].account
        async with self._locked(account) as session:
            ids = [o.client_order_id for o in orders]
            found = {
                row.client_order_id: row
                for row in await session.scalars(
                    select(OrderRow).where(OrderRow.account == account, OrderRow.client_order_id.in_(ids))
                )
            }
            if found:
                existing = tuple(stored(found[i]) for i in ids if i in found)
                return Admission(None, existing[0], existing=True, orders=existing)
            inputs = await _inputs(session, account, view_started_at)
            verdict = decide(inputs)
            if not approved(verdict):
                if forget_on_refusal is not None:
                    await session.execute(
                        delete(IdempotencyKeyRow).where(
                            IdempotencyKeyRow.account == account,
                            IdempotencyKeyRow.key == forget_on_refusal.key,
                            IdempotencyKeyRow.owner == forget_on_refusal.owner,
                        )
                    )
                return Admission(verdict, None)
            rows = [await add_pending(session, order, events=events) for order in orders]
            await session.flush()
            admitted = tuple(stored(row) for row in rows)
            return Admission(verdict, admitted[0], orders=admitted)

    async def set_trading_state(self, account: str, state: TradingState, reason: str | None) -> TradingStateView:
        """Set the trading state inside the account's critical section: every order admitted before it is
        recorded (so a halt can find it), and none is admitted after it under the old state. The write is
        `change_trading_state`'s, shared with `RiskStore`: racing its first write is safe."""
        async with self._locked(account) as session:
            return await change_trading_state(session, account, state, reason)

    @contextlib.asynccontextmanager
    async def _locked(self, account: str) -> AsyncIterator[AsyncSession]:
        """One transaction holding the account's lock (in this process, then in the database)."""
        lock = self._locks.get(account)
        if lock is None:
            lock = self._locks[account] = asyncio.Lock()
        async with lock, self._sessions.begin() as session:
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": account_lock_key(account)})
            else:
                # The driver would begin only at the first write, letting two critical sections read the same
                # state first; IMMEDIATE takes SQLite's write lock before anything is read.
                await session.execute(text("BEGIN IMMEDIATE"))
            yield session


def _placed_since(order: StoredOrder, since: datetime) -> bool:
    return order.placed_at is not None and order.placed_at >= since


def account_lock_key(account: str) -> int:
    """A stable signed 64-bit advisory-lock key per account (the same on every replica)."""
    digest = hashlib.sha256(b"aiotrade-gate\x00" + account.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _inputs(session: AsyncSession, account: str, view_started_at: datetime) -> GateInputs:
    state_row = await session.get(TradingStateRow, account)
    state = (
        TradingStateView(account=account, state=TradingState.ACTIVE, reason=None, changed_at=None)
        if state_row is None
        else TradingStateView(
            account=account,
            state=TradingState(state_row.state),
            reason=state_row.reason,
            changed_at=state_row.changed_at,
        )
    )
    since = datetime.now(UTC) - SUBMIT_WINDOW
    submitted = await session.scalar(
        select(func.count()).select_from(OrderRow).where(OrderRow.account == account, OrderRow.created_at >= since)
    )
    unsettled = [s.value for s in UNSETTLED_STATUSES]
    resting = [OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value]
    # One read of the account's orders that matter, told apart here: in flight (recorded, or acknowledged
    # after the view's balances were read) and our buys resting on the venue. An order may be both.
    rows = [
        stored(row)
        for row in await session.scalars(
            select(OrderRow).where(
                OrderRow.account == account,
                or_(
                    OrderRow.status.in_(unsettled),
                    OrderRow.placed_at >= view_started_at,
                    and_(OrderRow.side == "buy", OrderRow.status.in_(resting)),
                ),
            )
        )
    ]
    return GateInputs(
        state=state,
        submitted_last_minute=int(submitted or 0),
        in_flight=tuple(o for o in rows if o.status.value in unsettled or _placed_since(o, view_started_at)),
        resting_buys=tuple(o for o in rows if o.side == "buy" and o.status.value in resting),
    )
