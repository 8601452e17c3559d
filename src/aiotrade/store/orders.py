"""Order persistence: orders, fills, idempotency keys and the audit log, in short transactions.

Every method opens and commits its own transaction: the order service needs its PENDING row
committed *before* the request leaves, so that a crash at any later point leaves a trace to resolve.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.orders import OrderStatus
from aiotrade.services.order_state import check_transition
from aiotrade.store.tables import AuditRow, FillRow, IdempotencyKeyRow, OrderRow


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


@dataclass(frozen=True, slots=True)
class FillRecord:
    trade_id: str
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str | None
    taker_or_maker: str | None
    executed_at: datetime


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
                return Claim(ClaimKind.REPLAY, row.client_order_id, row.response_status, row.response_body)
            if row.locked_until > now:
                return Claim(ClaimKind.IN_FLIGHT, row.client_order_id)
            # The lease lapsed (a crash, or an outcome we could not settle): take it over.
            row.locked_until = now + lease
            row.owner = owner
            return Claim(ClaimKind.TAKEOVER, row.client_order_id, owner=owner)

    async def renew_key(self, account: str, key: str, *, owner: str, lease: timedelta) -> bool:
        """Extend the lease while the work goes on; False if someone else holds it now."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(IdempotencyKeyRow)
                .where(*self._held(account, key, owner))
                .values(locked_until=datetime.now(UTC) + lease)
            )
            return bool(result.rowcount)

    async def complete_key(self, account: str, key: str, *, owner: str, status: int, body: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(IdempotencyKeyRow)
                .where(*self._held(account, key, owner))
                .values(state="completed", response_status=status, response_body=body)
            )

    async def release_key(self, account: str, key: str, *, owner: str, forget: bool = False) -> None:
        """Let the next request with this key proceed now: deleted when nothing was sent, else unlocked.
        Only the lease holder can: a request whose lease was taken over changes nothing."""
        async with self._sessions.begin() as session:
            where = self._held(account, key, owner)
            if forget:
                await session.execute(delete(IdempotencyKeyRow).where(*where))
            else:
                await session.execute(update(IdempotencyKeyRow).where(*where).values(locked_until=datetime.now(UTC)))

    @staticmethod
    def _held(account: str, key: str, owner: str) -> tuple[Any, ...]:
        return (
            IdempotencyKeyRow.account == account,
            IdempotencyKeyRow.key == key,
            IdempotencyKeyRow.owner == owner,
            IdempotencyKeyRow.state == "in_flight",
        )

    async def purge_expired_keys(self) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at < datetime.now(UTC))
            )
            return result.rowcount or 0

    # ----- orders ----------------------------------------------------------------------------------

    async def insert_pending(self, row: OrderRow) -> tuple[OrderRow, bool]:
        """Record the order as PENDING: (the row, True); if the client id is already recorded,
        (that row, False) — an earlier attempt got this far and may have sent it."""
        try:
            async with self._sessions.begin() as session:
                session.add(row)
            return row, True
        except IntegrityError:
            existing = await self.get(row.account, row.client_order_id)
            assert existing is not None
            return existing, False

    async def get(self, account: str, client_order_id: str) -> OrderRow | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(OrderRow).where(OrderRow.account == account, OrderRow.client_order_id == client_order_id)
            )

    async def find(self, account: str, order_id: str) -> OrderRow | None:
        """By our client id or, failing that, by the exchange's order id."""
        async with self._sessions() as session:
            return await session.scalar(
                select(OrderRow)
                .where(
                    OrderRow.account == account,
                    or_(OrderRow.client_order_id == order_id, OrderRow.exchange_order_id == order_id),
                )
                .order_by(OrderRow.client_order_id != order_id)
                .limit(1)
            )

    async def apply(
        self,
        account: str,
        client_order_id: str,
        status: OrderStatus,
        *,
        unless_changed_since: datetime | None = None,
        **fields: Any,
    ) -> OrderRow | None:
        """Move an order to ``status`` (checked against the transition table) and set ``fields``.

        With ``unless_changed_since`` (a compare-and-set for the reconciler), nothing happens and None
        is returned if the row was updated after that instant by someone else.
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
            check_transition(OrderStatus(row.status), status, order_id=client_order_id)
            row.status = status.value
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
        return row

    async def list(
        self, account: str, filters: OrderFilter, *, cursor: str | None, limit: int
    ) -> tuple[list[OrderRow], str | None]:
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
        return rows[:limit], next_cursor

    async def unsettled(self, *, older_than: datetime, limit: int = 200) -> Sequence[OrderRow]:
        """Orders the reconciler should look at: PENDING/UNKNOWN past ``older_than``, and live ones —
        never one whose Idempotency-Key is held by a request right now."""
        in_flight = (
            select(IdempotencyKeyRow.client_order_id)
            .where(
                IdempotencyKeyRow.account == OrderRow.account,
                IdempotencyKeyRow.client_order_id == OrderRow.client_order_id,
                IdempotencyKeyRow.state == "in_flight",
                IdempotencyKeyRow.locked_until > datetime.now(UTC),
            )
            .exists()
        )
        async with self._sessions() as session:
            query = (
                select(OrderRow)
                .where(
                    ~in_flight,
                    or_(
                        and_(
                            OrderRow.status.in_([OrderStatus.PENDING.value, OrderStatus.UNKNOWN.value]),
                            OrderRow.updated_at < older_than,
                        ),
                        OrderRow.status.in_([OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value]),
                    ),
                )
                .order_by(OrderRow.updated_at)
                .limit(limit)
            )
            return list((await session.scalars(query)).all())

    # ----- fills and audit -------------------------------------------------------------------------

    async def record_fills(self, order: OrderRow, fills: Iterable[FillRecord]) -> int:
        """Insert fills not seen before (deduplicated by trade id); returns how many were new."""
        batch = {fill.trade_id: fill for fill in fills}
        if not batch:
            return 0
        for _ in range(3):  # a concurrent reconciler may insert the same fills: look again
            try:
                async with self._sessions.begin() as session:
                    seen = set(
                        await session.scalars(
                            select(FillRow.trade_id).where(
                                FillRow.account == order.account,
                                FillRow.symbol == order.symbol,
                                FillRow.trade_id.in_(list(batch)),
                            )
                        )
                    )
                    new = [fill for trade_id, fill in batch.items() if trade_id not in seen]
                    session.add_all(
                        FillRow(order_id=order.id, account=order.account, symbol=order.symbol, **asdict(fill))
                        for fill in new
                    )
                return len(new)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not record fills of order {order.client_order_id}")

    async def fills(self, account: str, *, symbol: str | None = None) -> list[FillRow]:
        query = select(FillRow).where(FillRow.account == account)
        if symbol:
            query = query.where(FillRow.symbol == symbol)
        async with self._sessions() as session:
            return list((await session.scalars(query.order_by(FillRow.executed_at, FillRow.id))).all())

    async def audit(self, account: str, client_order_id: str | None, event: str, **detail: Any) -> None:
        async with self._sessions.begin() as session:
            session.add(
                AuditRow(
                    account=account,
                    client_order_id=client_order_id,
                    event=event,
                    detail=json.loads(json.dumps(detail, default=str)),
                )
            )

    async def audit_trail(self, account: str, client_order_id: str) -> list[AuditRow]:
        async with self._sessions() as session:
            query = (
                select(AuditRow)
                .where(AuditRow.account == account, AuditRow.client_order_id == client_order_id)
                .order_by(AuditRow.id)
            )
            return list((await session.scalars(query)).all())


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
