"""Durable state: orders, fills, idempotency keys, an append-only audit log.

Money is stored as exact decimal text (SQLite has no exact numeric type); times as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its exact text, identical on SQLite and PostgreSQL."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: DecimalText(),
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account", "client_order_id", name="uq_orders_account_client_order_id"),
        Index("ix_orders_account_created", "account", "created_at", "id"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_account_status", "account", "status"),
        Index("ix_orders_account_placed", "account", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    venue: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str] = mapped_column(String(64))
    exchange_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str | None] = mapped_column(String(8))
    amount: Mapped[Decimal | None]
    quote_amount: Mapped[Decimal | None]
    price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(20))
    filled: Mapped[Decimal] = mapped_column(default=Decimal(0))
    average_price: Mapped[Decimal | None]
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_cost: Mapped[Decimal | None]
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    exchange_updated_at: Mapped[datetime | None]
    # When the exchange first acknowledged the order: the risk gate counts orders placed after it read
    # the account as still in flight (the balances it read cannot reflect them yet).
    placed_at: Mapped[datetime | None]
    # The last price the gate valued the order at: what an order still in flight reserves.
    reference_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]  # stop-loss and take-profit orders: the trigger


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("account", "symbol", "trade_id", name="uq_fills_account_trade"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    account: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[Decimal]
    amount: Mapped[Decimal]
    cost: Mapped[Decimal]
    fee_cost: Mapped[Decimal | None]
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    taker_or_maker: Mapped[str | None] = mapped_column(String(8))
    executed_at: Mapped[datetime]


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # in_flight until the first response is stored; a stale lease may be taken over.
    state: Mapped[str] = mapped_column(String(16))
    # Who holds the lease now: only the holder may renew, complete or release it.
    owner: Mapped[str | None] = mapped_column(String(32))
    client_order_id: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditRow(Base):
    """Append-only: every order request and outcome, never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    account: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The HTTP request and the API key (its id, never the secret) that caused the event, when one did.
    request_id: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(64))


class RiskLimitsRow(Base):
    """An account's pre-trade limits (a JSON document validated by `models.risk.RiskLimits`)."""

    __tablename__ = "risk_limits"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    limits: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TradingStateRow(Base):
    """ACTIVE, REDUCING (only exposure-reducing orders) or HALTED; shared by every replica."""

    __tablename__ = "trading_state"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class EquityRow(Base):
    """Account equity in its quote currency over time (recorded in the background)."""

    __tablename__ = "equity_history"
    __table_args__ = (
        Index("ix_equity_account_at", "account", "at"),
        # One record per account per recording interval, however many replicas try.
        UniqueConstraint("account", "bucket", name="uq_equity_account_bucket"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    quote: Mapped[str] = mapped_column(String(16))
    equity: Mapped[Decimal]
    bucket: Mapped[int | None] = mapped_column(BigInteger)


class EquityPeakRow(Base):
    """The highest recorded equity per account and quote, kept with each record (drawdown in O(1))."""

    __tablename__ = "equity_peaks"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    quote: Mapped[str] = mapped_column(String(16), primary_key=True)
    peak: Mapped[Decimal]
    at: Mapped[datetime]


class TargetRow(Base):
    """An account's target weight for one symbol (cash is what the weights leave)."""

    __tablename__ = "portfolio_targets"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[Decimal]
    source: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignalRow(Base):
    """The latest signal of a strategy for a symbol: a newer one replaces it (duplicates collapse)."""

    __tablename__ = "strategy_signals"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    strength: Mapped[Decimal]
    confidence: Mapped[Decimal]
    emitted_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class RebalanceRow(Base):
    __tablename__ = "rebalances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    executed: Mapped[bool]
    plan: Mapped[dict[str, Any]]


class LeaseRow(Base):
    """A lease that one replica holds at a time (the background jobs' leader, a stream's producer)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger)  # fencing: raised by every new holder
    expires_at: Mapped[datetime]


class JobRunRow(Base):
    """An interval of a periodic job, claimed once: its work runs once, whichever replica leads."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    interval: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(index=True)


class OrderEventRow(Base):
    """What the live stream tells about an account's orders and fills, numbered per account (no gaps)."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("account", "seq", name="uq_order_events_account_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # order | fill
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AccountSequenceRow(Base):
    """The last event number given out per account (incremented in the event's own transaction)."""

    __tablename__ = "account_sequences"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    """An API key of ours: only its SHA-256 digest is kept (the key itself is shown once, when made).

    Rows are never deleted: a revoked key keeps its id, so audit rows and caller-scoped idempotency keys
    still name someone known.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("digest", name="uq_api_keys_digest"),
        # One active key per name; a revoked key's name may be given to a new one.
        Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)  # not secret: names the key in audit rows
    digest: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    accounts: Mapped[list[str]] = mapped_column(JSON)  # "*": every configured account
    rate_limit: Mapped[float] = mapped_column(Float)  # inbound requests per second; 0: unlimited
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))  # cli, bootstrap, dev, or the admin key's id
    revoked_at: Mapped[datetime | None]


class WsTicketRow(Base):
    """A single-use WebSocket ticket (its digest), carrying its key's id, scopes and accounts."""

    __tablename__ = "ws_tickets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    accounts: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(index=True)
