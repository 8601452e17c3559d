"""Orders, exactly once: create, cancel, get, history, and reconciliation.

The promise: no fault between us and the exchange places an order twice or loses one.
- The client order id is fixed before any I/O: derived from the `Idempotency-Key` when given (so
  every replica derives the same id), random otherwise; the order is committed as PENDING before the
  request leaves.
- Order creation is never retried blindly. After an ambiguous failure (anything but the exchange's
  explicit refusal) we look the order up by client id. Only when the exchange says it does not
  exist *after the first send can no longer land* (its `recvWindow` plus clock skew have passed) do
  we send again, under the same client id.
- If the exchange cannot even be asked, the order is UNKNOWN and the caller is told an order may
  exist; the reconciler settles it, and a retry with the same key resumes the same order.

Amount and price rule: the amount is truncated toward zero to the market's lot step (never more than
asked); a price off the tick is refused (changing a limit price changes the trade). Limits (min/max
amount, min notional) are checked before anything is written or sent; a market order's notional is
estimated from the last price.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiotrade import errors as domain
from aiotrade.exchange.pool import ExchangePool
from aiotrade.models.orders import (
    CreateOrderRequest,
    Fee,
    Order,
    OrderPage,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from aiotrade.services.convert import ms_to_datetime, to_decimal
from aiotrade.services.market import require_symbols
from aiotrade.services.order_state import status_from_ccxt
from aiotrade.store.orders import ClaimKind, FillRecord, OrderFilter, OrderStore
from aiotrade.store.tables import OrderRow

log = logging.getLogger(__name__)

CLIENT_ID_PREFIX = "at"  # 2 + 30 characters: within Binance's 36 and its [.A-Z:/a-z0-9_-] alphabet
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_LANDING_WINDOW_MS = 10_000


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """How hard we try, and how long we wait before deciding an order did not land."""

    # After this long past a send, the exchange refuses that request. None: the account client's
    # recvWindow (binance), else DEFAULT_LANDING_WINDOW_MS.
    landing_window_ms: int | None = None
    clock_skew_ms: int = 1_000
    max_sends: int = 3
    key_lease: timedelta = timedelta(seconds=60)
    key_retention: timedelta = timedelta(hours=24)


PreTradeCheck = Callable[[str, CreateOrderRequest], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """A request brought to the market's precision, checked against its limits."""

    symbol: str
    side: str
    type: str
    amount: Decimal | None
    quote_amount: Decimal | None
    price: Decimal | None
    time_in_force: TimeInForce | None


class ReplayedError(domain.DomainError):
    """The stored first response of an idempotent request that failed, replayed as it was."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(str(body.get("detail", "")), order_may_exist=body.get("order_may_exist"))
        self.status = status
        self.slug = str(body.get("slug", "replayed-error"))
        self.title = str(body.get("title", "Error"))


# ----- create ------------------------------------------------------------------------------------


async def create_order(
    pool: ExchangePool,
    store: OrderStore,
    account: str,
    request: CreateOrderRequest,
    *,
    idempotency_key: str | None = None,
    policy: OrderPolicy | None = None,
    pre_trade_check: PreTradeCheck | None = None,
) -> Order:
    """Place an order exactly once. Raises a domain error that says whether an order may exist.

    ``pre_trade_check`` (the risk gate) runs after a replay is ruled out and before anything is
    recorded or sent; when it refuses, the key is forgotten, as if the request never came.
    """
    policy = _resolved(policy or OrderPolicy(), pool, account)
    venue = pool.venue_of(account)
    # Nothing is written or sent before this passes. A market order's notional needs a price: the
    # risk gate reads one anyway and checks the same filters, so without a gate we read it here.
    prepared = await prepare_order(pool, venue, request, check_notional=pre_trade_check is None)

    owner: str | None = None
    if idempotency_key is not None:
        _check_key(idempotency_key)
        client_order_id = client_id_for_key(account, idempotency_key)
        claim = await store.claim_key(
            account,
            idempotency_key,
            request_hash=request_fingerprint(account, request),
            client_order_id=client_order_id,
            lease=policy.key_lease,
            retention=policy.key_retention,
        )
        if claim.kind is ClaimKind.MISMATCH:
            raise domain.InvalidInput(
                "Idempotency-Key was already used with a different request",
                invalid_params=[domain.InvalidParam("Idempotency-Key", "reused with a different body")],
            )
        if claim.kind is ClaimKind.IN_FLIGHT:
            raise domain.Conflict("a request with this Idempotency-Key is still in flight; retry later")
        if claim.kind is ClaimKind.REPLAY:
            assert claim.response_body is not None and claim.response_status is not None
            if claim.response_status >= 400:
                raise ReplayedError(claim.response_status, claim.response_body)
            return Order.model_validate(claim.response_body)
        owner = claim.owner
    else:
        client_order_id = new_client_id()

    async with _lease_kept(store, account, idempotency_key, owner, policy.key_lease):
        # The order row is written only after the gate passed: no row means no attempt passed it yet
        # (a first request, or a takeover after a crash inside the gate).
        if pre_trade_check is not None and await store.get(account, client_order_id) is None:
            try:
                await pre_trade_check(account, request)
            except BaseException:
                if idempotency_key is not None and owner is not None:
                    await store.release_key(account, idempotency_key, owner=owner, forget=True)
                raise
        try:
            order = await _create(pool, store, account, venue, client_order_id, prepared, policy)
        except domain.DomainError as error:
            if idempotency_key is not None and owner is not None:
                if error.order_may_exist is False and error.status < 500:
                    # A definite answer (the exchange refused): it is this key's answer from now on.
                    body = _error_body(error)
                    await store.complete_key(account, idempotency_key, owner=owner, status=error.status, body=body)
                else:  # unsettled or transient: the next request with this key resumes this order
                    await store.release_key(account, idempotency_key, owner=owner)
            raise
        except BaseException:
            if idempotency_key is not None and owner is not None:
                await store.release_key(account, idempotency_key, owner=owner)
            raise
        if idempotency_key is not None and owner is not None:
            body = order.model_dump(mode="json")
            await store.complete_key(account, idempotency_key, owner=owner, status=201, body=body)
        return order


@contextlib.asynccontextmanager
async def _lease_kept(
    store: OrderStore, account: str, key: str | None, owner: str | None, lease: timedelta
) -> AsyncIterator[None]:
    """Renew the key's lease while the work runs, however long the exchange makes it take: a retry
    must never take the key over from a request that is still sending."""
    if key is None or owner is None:
        yield
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            if not await store.renew_key(account, key, owner=owner, lease=lease):
                log.error("lease of Idempotency-Key %r on %s was lost while in use", key, account)
                return

    keeper = asyncio.create_task(renew(), name="aiotrade-key-lease")
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _create(
    pool: ExchangePool,
    store: OrderStore,
    account: str,
    venue: str,
    client_order_id: str,
    prepared: PreparedOrder,
    policy: OrderPolicy,
) -> Order:
    row, inserted = await store.insert_pending(_pending_row(account, venue, client_order_id, prepared))
    await store.audit(account, client_order_id, "create_requested", resumed=not inserted, **_describe(prepared))
    if not inserted:
        # An earlier attempt got this far and may have sent it: find out what it did first.
        if OrderStatus(row.status) not in (OrderStatus.PENDING, OrderStatus.UNKNOWN):
            return to_model(row)
        # When the earlier attempt last sent is not known for sure: count the window from now.
        found = await _settle_by_lookup(pool, store, row, since_ms=_now_ms(), policy=policy)
        if found is not None:
            return found
    return await _send_until_settled(pool, store, row, prepared, policy)


async def _send_until_settled(
    pool: ExchangePool, store: OrderStore, row: OrderRow, prepared: PreparedOrder, policy: OrderPolicy
) -> Order:
    account, client_order_id = row.account, row.client_order_id
    for attempt in range(1, policy.max_sends + 1):
        # Touches updated_at too: the reconciler leaves a recently sent PENDING order alone.
        row = await store.apply(account, client_order_id, OrderStatus.PENDING)
        await store.audit(account, client_order_id, "send", attempt=attempt)
        try:
            raw = await pool.send_once(account, lambda c: _ccxt_create(c, prepared, client_order_id))
            if not raw.get("id") or raw.get("clientOrderId") not in (None, client_order_id):
                # ccxt turns a garbled 200 into an empty order: the order may well exist.
                raise domain.UpstreamBadResponse("unreadable answer to the order request", order_may_exist=True)
        except domain.DomainError as error:
            # The request was signed after the limiter let it go, at the latest now: count the
            # landing window from now, not from before the queue.
            failed_at_ms = _now_ms()
            if error.order_may_exist is False:
                await store.apply(account, client_order_id, OrderStatus.REJECTED, error=error.detail)
                await store.audit(account, client_order_id, "rejected", error=error.detail)
                raise
            await store.audit(account, client_order_id, "send_outcome_unknown", error=error.detail)
            found = await _settle_by_lookup(pool, store, row, since_ms=failed_at_ms, policy=policy)
            if found is not None:
                return found
            continue  # the exchange says it never landed, and it no longer can: send again
        order = await adopt(store, account, client_order_id, raw)
        await store.audit(account, client_order_id, "placed", exchange_order_id=order.exchange_order_id)
        return order
    detail = f"order {client_order_id} did not reach the exchange after {policy.max_sends} attempts"
    # Still PENDING (nothing placed): a retry with the same key resumes it under the same client id.
    await store.apply(account, client_order_id, OrderStatus.PENDING, error=detail)
    await store.audit(account, client_order_id, "abandoned", error=detail)
    raise domain.UpstreamUnavailable(
        detail + "; no order was placed — retry with the same Idempotency-Key", order_may_exist=False
    )


async def _settle_by_lookup(
    pool: ExchangePool, store: OrderStore, row: OrderRow, *, since_ms: int, policy: OrderPolicy
) -> Order | None:
    """The order if the exchange has it; None once it cannot have it; UNKNOWN if we cannot ask."""
    account, client_order_id = row.account, row.client_order_id
    try:
        raw = await lookup(pool, account, row.symbol, client_order_id)
        if raw is None:
            # Not there yet is not "never": wait until the send can no longer land, then ask again.
            window_ms = _window_ms(policy)
            wait_s = (since_ms + window_ms + policy.clock_skew_ms - _now_ms()) / 1000
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            raw = await lookup(pool, account, row.symbol, client_order_id)
    except domain.DomainError as error:
        await store.apply(account, client_order_id, OrderStatus.UNKNOWN, error=error.detail)
        await store.audit(account, client_order_id, "unknown", error=error.detail)
        raise domain.UpstreamUnavailable(
            f"order {client_order_id} may or may not have been placed and the exchange cannot be asked "
            "now; it will be reconciled — retry with the same Idempotency-Key to learn the outcome",
            order_may_exist=True,
            retry_after_s=error.retry_after_s,
        ) from error
    if raw is None:
        await store.audit(account, client_order_id, "not_found_after_window")
        return None
    order = await adopt(store, account, client_order_id, raw)
    await store.audit(account, client_order_id, "found_by_lookup", exchange_order_id=order.exchange_order_id)
    return order


async def lookup(pool: ExchangePool, account: str, symbol: str, client_order_id: str) -> dict[str, Any] | None:
    """The exchange's view of an order by client id, or None if it does not know it (retried read)."""
    try:
        return await pool.read_private(
            account, lambda c: c.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        )
    except domain.OrderNotFound:
        return None


async def adopt(store: OrderStore, account: str, client_order_id: str, raw: Mapping[str, Any]) -> Order:
    """Take the exchange's view of an order into the store (state machine checked) and return it."""
    fee = raw.get("fee") or {}
    row = await store.apply(
        account,
        client_order_id,
        status_from_ccxt(raw),
        exchange_order_id=str(raw["id"]) if raw.get("id") is not None else None,
        filled=to_decimal(raw.get("filled")) or Decimal(0),
        average_price=to_decimal(raw.get("average")),
        cost=to_decimal(raw.get("cost")) or Decimal(0),
        fee_cost=to_decimal(fee.get("cost")),
        fee_currency=fee.get("currency"),
        exchange_updated_at=ms_to_datetime(raw.get("lastUpdateTimestamp") or raw.get("timestamp")),
        error=None,
    )
    trades = [t for t in raw.get("trades") or [] if t.get("id") is not None]
    if trades:
        # Fills inside an order response carry neither side nor time: they are the order's.
        when = raw.get("lastTradeTimestamp") or raw.get("timestamp")
        await store.record_fills(row, [_fill(t, side=raw.get("side"), timestamp=when) for t in trades])
    return to_model(row)


# ----- cancel, get, history ----------------------------------------------------------------------


async def cancel_order(pool: ExchangePool, store: OrderStore, account: str, order_id: str) -> Order:
    """Cancel an open order (by our id or the exchange's). Cancelling a closed order says so."""
    row = await _known_order(pool, store, account, order_id)
    if OrderStatus(row.status).is_terminal:
        raise domain.Conflict(f"order {row.client_order_id} is already {row.status}")
    await store.audit(account, row.client_order_id, "cancel_requested")
    try:
        await pool.send_once(
            account,
            lambda c: c.cancel_order(None, row.symbol, {"clientOrderId": row.client_order_id}),
        )
    except domain.OrderNotFound:
        pass  # already gone (filled or cancelled meanwhile): the refresh below tells which
    except domain.DomainError as error:
        if error.order_may_exist is False:
            raise
        # Cancelling twice is harmless, but the refresh below is the truth either way.
    order = await refresh(pool, store, account, row.client_order_id, row.symbol)
    await store.audit(account, row.client_order_id, "cancel_outcome", status=order.status)
    return order


async def get_order(pool: ExchangePool, store: OrderStore, account: str, order_id: str) -> Order:
    """One order; a live one is refreshed from the exchange first."""
    row = await _known_order(pool, store, account, order_id)
    if OrderStatus(row.status).is_terminal:
        return to_model(row)
    try:
        return await refresh(pool, store, account, row.client_order_id, row.symbol)
    except domain.UpstreamError:
        return to_model(row)  # the stored state, rather than nothing, while the exchange is away


async def get_order_history(
    store: OrderStore,
    account: str,
    filters: OrderFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """Orders from the store, newest first (kept in step with the exchange by the reconciler)."""
    try:
        rows, next_cursor = await store.list(account, filters, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise domain.InvalidInput.param("cursor", str(exc)) from exc
    return OrderPage(orders=[to_model(row) for row in rows], next_cursor=next_cursor)


async def refresh(pool: ExchangePool, store: OrderStore, account: str, client_order_id: str, symbol: str) -> Order:
    raw = await lookup(pool, account, symbol, client_order_id)
    if raw is None:
        raise domain.OrderNotFound(f"the exchange does not know order {client_order_id}")
    order = await adopt(store, account, client_order_id, raw)
    if order.filled > 0 and order.exchange_order_id is not None:
        await record_trades(pool, store, account, client_order_id, symbol, order.exchange_order_id)
    return order


async def record_trades(
    pool: ExchangePool, store: OrderStore, account: str, client_order_id: str, symbol: str, exchange_id: str
) -> int:
    trades = await pool.read_private(account, lambda c: c.fetch_my_trades(symbol, None, None, {"orderId": exchange_id}))
    row = await store.get(account, client_order_id)
    assert row is not None
    return await store.record_fills(row, [_fill(t) for t in trades if t.get("id") is not None])


async def reconcile(pool: ExchangePool, store: OrderStore, policy: OrderPolicy | None = None) -> int:
    """Settle PENDING/UNKNOWN orders whose send can no longer land, and refresh live ones.

    Never sends an order: an order the exchange does not have by now is marked REJECTED.
    Returns how many orders changed.
    """
    policy = policy or OrderPolicy()
    window_ms = _window_ms(policy)
    horizon = datetime.now(UTC) - timedelta(milliseconds=window_ms + policy.clock_skew_ms) - policy.key_lease
    changed = 0
    for row in await store.unsettled(older_than=horizon):
        try:
            raw = await lookup(pool, row.account, row.symbol, row.client_order_id)
            if raw is None:
                if OrderStatus(row.status) in (OrderStatus.PENDING, OrderStatus.UNKNOWN):
                    detail = "never reached the exchange (settled by the reconciler)"
                    # Compare-and-set: a retry that resumed this order since we read it wins.
                    settled = await store.apply(
                        row.account,
                        row.client_order_id,
                        OrderStatus.REJECTED,
                        unless_changed_since=row.updated_at,
                        error=detail,
                    )
                    if settled is not None:
                        await store.audit(row.account, row.client_order_id, "reconciled_not_found")
                        changed += 1
                continue
            order = await adopt(store, row.account, row.client_order_id, raw)
            if order.filled > 0 and order.exchange_order_id:
                await record_trades(pool, store, row.account, row.client_order_id, row.symbol, order.exchange_order_id)
            if order.status != row.status:
                await store.audit(row.account, row.client_order_id, "reconciled", status=order.status)
                changed += 1
        except domain.DomainError as error:
            log.warning("reconcile of %s failed: %s", row.client_order_id, error.detail)
        except Exception:  # one bad row must not stop the others from being reconciled
            log.exception("reconcile of %s failed", row.client_order_id)
    return changed


# ----- preparation and helpers -------------------------------------------------------------------


async def prepare_order(
    pool: ExchangePool, venue: str, request: CreateOrderRequest, *, check_notional: bool = True
) -> PreparedOrder:
    """Bring amount and price to the market's precision and check its limits, without sending.

    A market order's notional is estimated from the last price (one ticker read) unless
    ``check_notional`` is off (the risk gate then checks it with its own price).
    """
    markets = await require_symbols(pool, venue, [request.symbol])
    last = None
    if check_notional and request.type is OrderType.MARKET and request.quote_amount is None:
        ticker = await pool.read(venue, lambda c: c.fetch_ticker(request.symbol))
        last = to_decimal(ticker.get("last"))
    prepared, breaches = check_against_market(markets[request.symbol], request, last)
    if breaches:
        problems = [domain.InvalidParam(b.field, b.reason) for b in breaches]
        raise domain.InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in problems), invalid_params=problems)
    return prepared


@dataclass(frozen=True, slots=True)
class MarketBreach:
    """A request that the market's own filters would refuse, with a reason code for the risk gate."""

    code: str
    field: str
    reason: str


def check_against_market(
    market: Mapping[str, Any], request: CreateOrderRequest, last_price: Decimal | None
) -> tuple[PreparedOrder, list[MarketBreach]]:
    """The order at the market's precision (amount truncated to the lot step) and every filter it breaks."""
    precision, limits = market.get("precision") or {}, market.get("limits") or {}
    breaches: list[MarketBreach] = []

    def bound(kind: str, side: str) -> Decimal | None:
        value = to_decimal((limits.get(kind) or {}).get(side))
        return value if value is not None and value > 0 else None

    amount = request.amount
    step = to_decimal(precision.get("amount"))
    if amount is not None and step:
        amount = (amount / step).to_integral_value(rounding=ROUND_DOWN) * step
        if amount <= 0:
            breaches.append(MarketBreach("AMOUNT_BELOW_LOT_STEP", "amount", f"below the lot step {step}"))
    price = request.price
    tick = to_decimal(precision.get("price"))
    if price is not None and tick and price % tick != 0:
        breaches.append(MarketBreach("PRICE_OFF_TICK", "price", f"not a multiple of the tick size {tick}"))
    if amount is not None and amount > 0:
        if (low := bound("amount", "min")) is not None and amount < low:
            breaches.append(MarketBreach("AMOUNT_BELOW_MIN", "amount", f"below the minimum {low}"))
        if (high := bound("amount", "max")) is not None and amount > high:
            breaches.append(MarketBreach("AMOUNT_ABOVE_MAX", "amount", f"above the maximum {high}"))
    if price is not None:
        if (low := bound("price", "min")) is not None and price < low:
            breaches.append(MarketBreach("PRICE_BELOW_MIN", "price", f"below the minimum {low}"))
        if (high := bound("price", "max")) is not None and price > high:
            breaches.append(MarketBreach("PRICE_ABOVE_MAX", "price", f"above the maximum {high}"))
    notional = order_notional(request, amount, price, last_price)
    field = "quote_amount" if request.quote_amount is not None else "amount"
    if notional is not None and amount != 0:
        if (low := bound("cost", "min")) is not None and notional < low:
            breaches.append(
                MarketBreach("NOTIONAL_BELOW_MIN", field, f"notional {notional} is below the minimum {low}")
            )
        if (high := bound("cost", "max")) is not None and notional > high:
            breaches.append(
                MarketBreach("NOTIONAL_ABOVE_MAX", field, f"notional {notional} is above the maximum {high}")
            )
    prepared = PreparedOrder(
        symbol=request.symbol,
        side=request.side.value,
        type=request.type.value,
        amount=amount,
        quote_amount=request.quote_amount,
        price=price,
        time_in_force=(request.time_in_force or TimeInForce.GTC) if request.type is OrderType.LIMIT else None,
    )
    return prepared, breaches


def order_notional(
    request: CreateOrderRequest, amount: Decimal | None, price: Decimal | None, last_price: Decimal | None
) -> Decimal | None:
    """Quote value of an order: the quote amount, amount × limit price, or amount × last price."""
    if request.quote_amount is not None:
        return request.quote_amount
    reference = price if price is not None else last_price
    return amount * reference if amount is not None and reference is not None else None


async def _ccxt_create(client: Any, order: PreparedOrder, client_order_id: str) -> dict[str, Any]:
    params: dict[str, Any] = {"clientOrderId": client_order_id}
    if order.time_in_force is not None:
        params["timeInForce"] = order.time_in_force.value
    if order.quote_amount is not None:
        params["cost"] = str(order.quote_amount)
    # Strings, not floats: ccxt formats them with its exact decimal routines.
    amount = str(order.amount) if order.amount is not None else None
    price = str(order.price) if order.price is not None else None
    return await client.create_order(order.symbol, order.type, order.side, amount, price, params)


async def _known_order(pool: ExchangePool, store: OrderStore, account: str, order_id: str) -> OrderRow:
    pool.venue_of(account)  # unknown account -> 404 before the store is asked
    row = await store.find(account, order_id)
    if row is None:
        raise domain.OrderNotFound(f"no order {order_id!r} on account {account!r}")
    return row


def to_model(row: OrderRow) -> Order:
    fee = Fee(cost=row.fee_cost, currency=row.fee_currency) if row.fee_cost is not None else None
    remaining = row.amount - row.filled if row.amount is not None else None
    return Order(
        id=row.client_order_id,
        exchange_order_id=row.exchange_order_id,
        account=row.account,
        venue=row.venue,
        symbol=row.symbol,
        side=row.side,
        type=row.type,
        time_in_force=row.time_in_force,
        amount=row.amount,
        quote_amount=row.quote_amount,
        price=row.price,
        status=OrderStatus(row.status),
        filled=row.filled,
        remaining=remaining,
        average_price=row.average_price,
        cost=row.cost,
        fee=fee,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _resolved(policy: OrderPolicy, pool: ExchangePool, account: str) -> OrderPolicy:
    if policy.landing_window_ms is not None:
        return policy
    window = pool.recv_window_ms(account) or DEFAULT_LANDING_WINDOW_MS
    return dataclasses.replace(policy, landing_window_ms=window)


def client_id_for_key(account: str, key: str) -> str:
    """The same key on the same account gives the same client id, on every replica."""
    digest = hashlib.sha256(f"{account}\x00{key}".encode()).hexdigest()
    return CLIENT_ID_PREFIX + digest[:30]


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(15)


def request_fingerprint(account: str, request: CreateOrderRequest) -> str:
    canonical = request.model_dump_json(exclude_none=True)
    return hashlib.sha256(f"{account}\x00{canonical}".encode()).hexdigest()


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise domain.InvalidInput(
            "Idempotency-Key must be 1 to 255 printable characters",
            invalid_params=[domain.InvalidParam("Idempotency-Key", "1 to 255 printable characters")],
        )


def _pending_row(account: str, venue: str, client_order_id: str, order: PreparedOrder) -> OrderRow:
    now = datetime.now(UTC)
    return OrderRow(
        account=account,
        venue=venue,
        client_order_id=client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        time_in_force=order.time_in_force.value if order.time_in_force else None,
        amount=order.amount,
        quote_amount=order.quote_amount,
        price=order.price,
        status=OrderStatus.PENDING.value,
        filled=Decimal(0),
        cost=Decimal(0),
        created_at=now,
        updated_at=now,
    )


def _describe(order: PreparedOrder) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "amount": order.amount,
        "quote_amount": order.quote_amount,
        "price": order.price,
    }


def _error_body(error: domain.DomainError) -> dict[str, Any]:
    return {
        "slug": error.slug,
        "title": error.title,
        "detail": error.detail,
        "order_may_exist": error.order_may_exist,
    }


def _fill(trade: Mapping[str, Any], *, side: str | None = None, timestamp: int | None = None) -> FillRecord:
    fee = trade.get("fee") or {}
    price, amount = Decimal(str(trade["price"])), Decimal(str(trade["amount"]))
    return FillRecord(
        trade_id=str(trade["id"]),
        side=str(trade.get("side") or side or ""),
        price=price,
        amount=amount,
        cost=to_decimal(trade.get("cost")) or price * amount,
        fee_cost=to_decimal(fee.get("cost")),
        fee_currency=fee.get("currency"),
        taker_or_maker=trade.get("takerOrMaker"),
        executed_at=ms_to_datetime(trade.get("timestamp") or timestamp) or datetime.now(UTC),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _window_ms(policy: OrderPolicy) -> int:
    return DEFAULT_LANDING_WINDOW_MS if policy.landing_window_ms is None else policy.landing_window_ms
