"""Order persistence: orders, fills, idempotency keys and the audit log, in short transactions.

Every method opens and commits its own transaction. A status change and its audit record are written
in one (`transition`), and so are a key's completion and the order's final state: a crash between any
two commits leaves a state with its audit, never one without. The PENDING row itself is written by the
risk gate's critical section (`store/gate.py`), before the request leaves.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.context import current_caller
from aiotrade.domain.records import VenueFill
from aiotrade.models.orders import UNSETTLED_STATUSES, Fee, Order, OrderStatus, check_transition, list_id_of
from aiotrade.observability.metrics import IDEMPOTENCY_REPLAYS, record_transition
from aiotrade.store.events import add_events
from aiotrade.store.tables import AuditRow, FillRow, IdempotencyKeyRow, OrderRow

_LIVE_AFTER_PLACEMENT = frozenset(
    {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
)


class ClaimKind(StrEnum):
    NEW = "new"  # first time: go ahead
    TAKEOVER = "takeover"  # an earlier attempt's lease lapsed: resolve it, then go ahead
    REPLAY = "replay"  # completed: return the stored response
    MISMATCH = "mismatch"  # same key, different request
    IN_FLIGHT = "in_flight"  # another request with this key is running


@dataclass(frozen=True, slots=True)
class Claim:
    kind: ClaimKind
    client_order_id: str
    response_status: int | None = None
    response_body: dict[str, Any] | None = None
    owner: str | None = None  # the lease holder's token (NEW and TAKEOVER only)
    locked_until: datetime | None = None  # IN_FLIGHT: when the holder's lease runs out


@dataclass(frozen=True, slots=True)
class KeyCompletion:
    """The first response to store for an idempotency key, written with the order's transition."""

    key: str
    owner: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order about to be recorded as PENDING."""

    account: str
    venue: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    amount: Decimal | None
    quote_amount: Decimal | None
    price: Decimal | None
    reference_price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order as the store holds it."""

    row_id: int
    account: str
    venue: str
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    amount: Decimal | None
    quote_amount: Decimal | None
    price: Decimal | None
    status: OrderStatus
    filled: Decimal
    average_price: Decimal | None
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    placed_at: datetime | None
    exchange_updated_at: datetime | None
    reference_price: Decimal | None
    stop_price: Decimal | None

    def as_order(self) -> Order:
        fee = Fee(cost=self.fee_cost, currency=self.fee_currency) if self.fee_cost is not None else None
        return Order(
            id=self.client_order_id,
            exchange_order_id=self.exchange_order_id,
            account=self.account,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            time_in_force=self.time_in_force,
            amount=self.amount,
            quote_amount=self.quote_amount,
            price=self.price,
            stop_price=self.stop_price,
            status=self.status,
            filled=self.filled,
            remaining=self.amount - self.filled if self.amount is not None else None,
            average_price=self.average_price,
            cost=self.cost,
            fee=fee,
            error=self.error,
            order_list_id=list_id_of(self.client_order_id),
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True, slots=True)
class StoredFill:
    trade_id: str
    client_order_id: str | None
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str | None
    taker_or_maker: str | None
    executed_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    client_order_id: str | None
    event: str
    detail: dict[str, Any]
    request_id: str | None
    api_key_id: str | None


@dataclass(frozen=True, slots=True)
class OrderFilter:
    symbol: str | None = None
    statuses: tuple[OrderStatus, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None


class OrderStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ----- idempotency keys ------------------------------------------------------------------------

    async def claim_key(
        self,
        account: str,
        key: str,
        *,
        request_hash: str,
        client_order_id: str,
        lease: timedelta,
        retention: timedelta,
    ) -> Claim:
        """Take the key for this request, or say why not. Safe across replicas (primary key)."""
        now = datetime.now(UTC)
        owner = secrets.token_hex(8)
        try:
            async with self._sessions.begin() as session:
                session.add(
                    IdempotencyKeyRow(
                        account=account,
                        key=key,
                        request_hash=request_hash,
                        state="in_flight",
                        owner=owner,
                        client_order_id=client_order_id,
                        created_at=now,
                        locked_until=now + lease,
                        expires_at=now + retention,
                    )
                )
            return Claim(ClaimKind.NEW, client_order_id, owner=owner)
        except IntegrityError:
            pass
        async with self._sessions.begin() as session:
            row = await session.get(IdempotencyKeyRow, (account, key), with_for_update=True)
            if row is None:  # expired and purged between the two statements: try once more
                return await self.claim_key(
                    account, key, request_hash=request_hash, client_order_id=client_order_id,
                    lease=lease, retention=retention,
                )  # fmt: skip
            if row.request_hash != request_hash:
                return Claim(ClaimKind.MISMATCH, row.client_order_id)
            if row.state == "completed":
                IDEMPOTENCY_REPLAYS.inc()
                return Claim(ClaimKind.REPLAY, row.client_order_id, row.response_status, row.response_body)
            if row.locked_until > now:
                return Claim(ClaimKind.IN_FLIGHT, row.client_order_id, locked_until=row.locked_until)
            # The lease lapsed (a crash, or an outcome we could not settle): take it over.
            row.locked_until = now + lease
            row.owner = owner
            return Claim(ClaimKind.TAKEOVER, row.client_order_id, owner=owner)

    async def renew_key(self, account: str, key: str, *, owner: str, lease: timedelta) -> bool:
        """Extend the lease while the work goes on; False if someone else holds it now."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(IdempotencyKeyRow)
                .where(*_held(account, key, owner))
                .values(locked_until=datetime.now(UTC) + lease)
            )
            return bool(result.rowcount)

    async def complete_key(self, account: str, key: str, *, owner: str, status: int, body: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await _complete(session, account, KeyCompletion(key, owner, status, body))

    async def release_key(self, account: str, key: str, *, owner: str, forget: bool = False) -> None:
        """Let the next request with this key proceed now: deleted when nothing was sent, else unlocked.
        Only the lease holder can: a request whose lease was taken over changes nothing."""
        async with self._sessions.begin() as session:
            where = _held(account, key, owner)
            if forget:
                await session.execute(delete(IdempotencyKeyRow).where(*where))
            else:
                await session.execute(update(IdempotencyKeyRow).where(*where).values(locked_until=datetime.now(UTC)))

    # ----- orders ----------------------------------------------------------------------------------

    async def get(self, account: str, client_order_id: str) -> StoredOrder | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow).where(OrderRow.account == account, OrderRow.client_order_id == client_order_id)
            )
        return stored(row) if row is not None else None

    async def find(self, account: str, order_id: str) -> StoredOrder | None:
        """By our client id or, failing that, by the exchange's order id."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow)
                .where(
                    OrderRow.account == account,
                    or_(OrderRow.client_order_id == order_id, OrderRow.exchange_order_id == order_id),
                )
                .order_by(OrderRow.client_order_id != order_id)
                .limit(1)
            )
        return stored(row) if row is not None else None

    async def insert_pending(
        self, order: NewOrder, *, events: Sequence[tuple[str, dict[str, Any]]] = (("create_requested", {}),)
    ) -> tuple[StoredOrder, bool]:
        """Record the order as PENDING with its audit: (the order, True); if the client id is already
        recorded, (that order, False) — an earlier attempt got this far and may have sent it.

        Placement goes through the gate's critical section instead (`store/gate.py`), which writes the
        same row; this is for callers that have already been admitted."""
        try:
            async with self._sessions.begin() as session:
                row = await add_pending(session, order, events=events)
            return stored(row), True
        except IntegrityError:
            existing = await self.get(order.account, order.client_order_id)
            assert existing is not None
            return existing, False

    async def transition(
        self,
        account: str,
        client_order_id: str,
        status: OrderStatus,
        *,
        event: str | None = None,
        detail: dict[str, Any] | None = None,
        unless_changed_since: datetime | None = None,
        complete_key: Callable[[StoredOrder], KeyCompletion] | None = None,
        fills: Sequence[VenueFill] = (),
        **fields: Any,
    ) -> StoredOrder | None:
        """Move an order to ``status`` (checked against the transition table), set ``fields``, and write
        the audit ``event``, the ``fills`` not recorded before and the key's completion (made from the order
        as it now stands) — all in one transaction.

        With ``unless_changed_since`` (a compare-and-set for the reconciler), nothing happens and None is
        returned if the order was updated after that instant by someone else.
        """
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(OrderRow)
                .where(OrderRow.account == account, OrderRow.client_order_id == client_order_id)
                .with_for_update()
            )
            if row is None:
                raise LookupError(f"no order {client_order_id!r} on account {account!r}")
            if unless_changed_since is not None and row.updated_at != unless_changed_since:
                return None
            current = OrderStatus(row.status)
            check_transition(current, status, order_id=client_order_id)
            now = datetime.now(UTC)
            if row.placed_at is None and current in UNSETTLED_STATUSES and status in _LIVE_AFTER_PLACEMENT:
                row.placed_at = now
            # A stream event when the state or the filled amount changes (not for a touch or a refresh).
            changed = current is not status or ("filled" in fields and fields["filled"] != row.filled)
            row.status = status.value
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = now
            if event is not None:
                session.add(audit_row(account, client_order_id, event, detail or {}))
            await session.flush()
            result = stored(row)
            if changed:
                await add_events(session, account, [("order", client_order_id, _order_payload(result))])
            if fills:
                await _add_new_fills(session, result, fills)
            if complete_key is not None:
                await _complete(session, account, complete_key(result))
        if current is not status:  # counted once committed
            record_transition(current.value, status.value)
        return result

    async def audit(self, account: str, client_order_id: str | None, event: str, **detail: Any) -> None:
        """An event that changes no state (a look-up, a cancel request) on the order's trail."""
        async with self._sessions.begin() as session:
            session.add(audit_row(account, client_order_id, event, detail))

    async def list(
        self, account: str, filters: OrderFilter, *, cursor: str | None, limit: int
    ) -> tuple[list[StoredOrder], str | None]:
        """Newest first; the cursor is opaque (the last row's id)."""
        query = select(OrderRow).where(OrderRow.account == account)
        if filters.symbol:
            query = query.where(OrderRow.symbol == filters.symbol)
        if filters.statuses:
            query = query.where(OrderRow.status.in_([s.value for s in filters.statuses]))
        if filters.created_from:
            query = query.where(OrderRow.created_at >= filters.created_from)
        if filters.created_to:
            query = query.where(OrderRow.created_at < filters.created_to)
        if cursor is not None:
            query = query.where(OrderRow.id < decode_cursor(cursor))
        query = query.order_by(OrderRow.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return [stored(r) for r in rows[:limit]], next_cursor

    async def in_flight(self, account: str) -> list[StoredOrder]:
        """The account's orders whose send may still land (PENDING or UNKNOWN)."""
        query = select(OrderRow).where(
            OrderRow.account == account, OrderRow.status.in_([s.value for s in UNSETTLED_STATUSES])
        )
        async with self._sessions() as session:
            return [stored(r) for r in (await session.scalars(query)).all()]

    async def unsettled(self, *, older_than: datetime, limit: int = 200) -> list[StoredOrder]:
        """Orders the reconciler should look at: PENDING/UNKNOWN past ``older_than``, and live ones —
        never one whose Idempotency-Key is held by a request right now."""
        in_flight = (
            select(IdempotencyKeyRow.client_order_id)
            .where(
                IdempotencyKeyRow.account == OrderRow.account,
                or_(
                    IdempotencyKeyRow.client_order_id == OrderRow.client_order_id,
                    # an OCO's legs: the key names the list, each leg's id is the list's plus "-l" or "-s"
                    OrderRow.client_order_id.like(IdempotencyKeyRow.client_order_id + "-_"),
                ),
                IdempotencyKeyRow.state == "in_flight",
                IdempotencyKeyRow.locked_until > datetime.now(UTC),
            )
            .exists()
        )
        query = (
            select(OrderRow)
            .where(
                ~in_flight,
                or_(
                    and_(
                        OrderRow.status.in_([s.value for s in UNSETTLED_STATUSES]),
                        OrderRow.updated_at < older_than,
                    ),
                    OrderRow.status.in_([OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value]),
                ),
            )
            .order_by(OrderRow.updated_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [stored(r) for r in (await session.scalars(query)).all()]

    # ----- fills and audit -------------------------------------------------------------------------

    async def record_fills(self, order: StoredOrder, fills: Iterable[VenueFill]) -> int:
        """Insert fills not seen before (deduplicated by trade id); returns how many were new."""
        fills = list(fills)
        if not fills:
            return 0
        async with self._sessions.begin() as session:
            return await _add_new_fills(session, order, fills)

    async def fills(self, account: str, *, symbol: str | None = None) -> list[StoredFill]:
        """Every recorded fill of the account (of one symbol), oldest first."""
        query = select(FillRow, OrderRow.client_order_id).join(OrderRow, FillRow.order_id == OrderRow.id)
        query = query.where(FillRow.account == account)
        if symbol:
            query = query.where(FillRow.symbol == symbol)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(FillRow.executed_at, FillRow.id))).all()
        return [_stored_fill(fill, client_order_id) for fill, client_order_id in rows]

    async def fill_page(
        self,
        account: str,
        *,
        symbol: str | None,
        executed_from: datetime | None,
        executed_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[StoredFill], str | None]:
        """Fills newest first, filtered; the cursor is opaque (the last fill's id)."""
        query = select(FillRow, OrderRow.client_order_id).join(OrderRow, FillRow.order_id == OrderRow.id)
        query = query.where(FillRow.account == account)
        if symbol:
            query = query.where(FillRow.symbol == symbol)
        if executed_from:
            query = query.where(FillRow.executed_at >= executed_from)
        if executed_to:
            query = query.where(FillRow.executed_at < executed_to)
        if cursor is not None:
            query = query.where(FillRow.id < decode_cursor(cursor))
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(FillRow.id.desc()).limit(limit + 1))).all()
        next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
        return [_stored_fill(fill, client_order_id) for fill, client_order_id in rows[:limit]], next_cursor

    async def audit_trail(self, account: str, client_order_id: str) -> list[AuditEntry]:
        async with self._sessions() as session:
            query = (
                select(AuditRow)
                .where(AuditRow.account == account, AuditRow.client_order_id == client_order_id)
                .order_by(AuditRow.id)
            )
            rows = (await session.scalars(query)).all()
        return [AuditEntry(r.at, r.client_order_id, r.event, r.detail, r.request_id, r.api_key_id) for r in rows]


# ----- helpers shared with the gate's critical section ---------------------------------------------


async def add_pending(
    session: AsyncSession, order: NewOrder, *, events: Sequence[tuple[str, dict[str, Any]]]
) -> OrderRow:
    """Add the PENDING row, its audit events and its stream event to ``session``'s transaction."""
    now = datetime.now(UTC)
    row = OrderRow(
        account=order.account,
        venue=order.venue,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        time_in_force=order.time_in_force,
        amount=order.amount,
        quote_amount=order.quote_amount,
        price=order.price,
        reference_price=order.reference_price,
        stop_price=order.stop_price,
        status=OrderStatus.PENDING.value,
        filled=Decimal(0),
        cost=Decimal(0),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.add_all(audit_row(order.account, order.client_order_id, event, detail) for event, detail in events)
    await session.flush()
    await add_events(session, order.account, [("order", order.client_order_id, _order_payload(stored(row)))])
    return row


def _order_payload(order: StoredOrder) -> dict[str, Any]:
    return order.as_order().model_dump(mode="json")


def _fill_payload(order: StoredOrder, values: dict[str, Any]) -> dict[str, Any]:
    fee = (
        {"cost": str(values["fee_cost"]), "currency": values["fee_currency"]}
        if values["fee_cost"] is not None
        else None
    )
    return {
        "trade_id": values["trade_id"],
        "order_id": order.client_order_id,
        "symbol": values["symbol"],
        "side": values["side"],
        "price": format(values["price"], "f"),
        "amount": format(values["amount"], "f"),
        "cost": format(values["cost"], "f"),
        "fee": fee,
        "taker_or_maker": values["taker_or_maker"],
        "executed_at": values["executed_at"].isoformat(),
    }


def audit_row(account: str, client_order_id: str | None, event: str, detail: dict[str, Any]) -> AuditRow:
    caller = current_caller()
    return AuditRow(
        account=account,
        client_order_id=client_order_id,
        event=event,
        detail=json.loads(json.dumps(detail, default=str)),
        request_id=caller.request_id,
        api_key_id=caller.api_key_id,
    )


def stored(row: OrderRow) -> StoredOrder:
    return StoredOrder(
        row_id=row.id,
        account=row.account,
        venue=row.venue,
        client_order_id=row.client_order_id,
        exchange_order_id=row.exchange_order_id,
        symbol=row.symbol,
        side=row.side,
        type=row.type,
        time_in_force=row.time_in_force,
        amount=row.amount,
        quote_amount=row.quote_amount,
        price=row.price,
        status=OrderStatus(row.status),
        filled=row.filled,
        average_price=row.average_price,
        cost=row.cost,
        fee_cost=row.fee_cost,
        fee_currency=row.fee_currency,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        placed_at=row.placed_at,
        exchange_updated_at=row.exchange_updated_at,
        reference_price=row.reference_price,
        stop_price=row.stop_price,
    )


async def _add_new_fills(session: AsyncSession, order: StoredOrder, fills: Iterable[VenueFill]) -> int:
    """Insert the fills not recorded before (by trade id); one a concurrent writer recorded is skipped."""
    rows = [_fill_values(order, fill) for fill in {fill.trade_id: fill for fill in fills}.values()]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(FillRow)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["account", "symbol", "trade_id"])
        .returning(FillRow.trade_id)
    )
    new = set((await session.execute(statement)).scalars().all())
    await add_events(
        session,
        order.account,
        [("fill", order.client_order_id, _fill_payload(order, r)) for r in rows if r["trade_id"] in new],
    )
    return len(new)


async def _complete(session: AsyncSession, account: str, completion: KeyCompletion) -> None:
    await session.execute(
        update(IdempotencyKeyRow)
        .where(*_held(account, completion.key, completion.owner))
        .values(state="completed", response_status=completion.status, response_body=completion.body)
    )


def _held(account: str, key: str, owner: str) -> tuple[Any, ...]:
    return (
        IdempotencyKeyRow.account == account,
        IdempotencyKeyRow.key == key,
        IdempotencyKeyRow.owner == owner,
        IdempotencyKeyRow.state == "in_flight",
    )


def _fill_values(order: StoredOrder, fill: VenueFill) -> dict[str, Any]:
    return {
        "order_id": order.row_id,
        "account": order.account,
        "symbol": order.symbol,
        "trade_id": fill.trade_id,
        "side": fill.side or order.side,
        "price": fill.price,
        "amount": fill.amount,
        "cost": fill.cost,
        "fee_cost": fill.fee_cost,
        "fee_currency": fill.fee_currency,
        "taker_or_maker": fill.taker_or_maker,
        "executed_at": fill.executed_at,
    }


def _stored_fill(row: FillRow, client_order_id: str | None) -> StoredFill:
    return StoredFill(
        trade_id=row.trade_id,
        client_order_id=client_order_id,
        symbol=row.symbol,
        side=row.side,
        price=row.price,
        amount=row.amount,
        cost=row.cost,
        fee_cost=row.fee_cost,
        fee_currency=row.fee_currency,
        taker_or_maker=row.taker_or_maker,
        executed_at=row.executed_at,
    )


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": row_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id in a cursor; ValueError for anything we did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["id"]
    except Exception as exc:
        raise ValueError("not a cursor from this API") from exc
    if not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("not a cursor from this API")
    return value
