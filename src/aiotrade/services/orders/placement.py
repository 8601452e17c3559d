"""Placing an order exactly once, always through the risk gate.

The promise: no fault between us and the exchange places an order twice or loses one.
- The client order id is fixed before any I/O: derived from the `Idempotency-Key` when given (so
  every replica derives the same id), random otherwise. The gate records the order as PENDING in the
  same transaction that approves it, before the request leaves.
- Order creation is never retried blindly. After an ambiguous failure (anything but the exchange's
  explicit refusal) we look the order up by client id. Only when the exchange says it does not
  exist *after the first send can no longer land* (its `recvWindow` plus clock skew have passed) do
  we send again, under the same client id.
- If the exchange cannot even be asked, the order is UNKNOWN and the caller is told an order may
  exist; the reconciler settles it, and a retry with the same key resumes the same order.
Happy path with a key: three commits — the key's claim, the gate's PENDING insert, and the order's
placed state together with its audit and the key's stored answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiotrade import errors as domain
from aiotrade.config import OrdersConfig
from aiotrade.domain.market_rules import PreparedOrder
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import (
    UNSETTLED_STATUSES,
    CreateOcoRequest,
    CreateOrderRequest,
    Order,
    OrderStatus,
    TimeInForce,
)
from aiotrade.models.risk import TradingState
from aiotrade.services.orders.keys import check_key, client_id_for_key, new_client_id, request_fingerprint
from aiotrade.services.orders.settlement import adopt, refresh
from aiotrade.services.risk.gate import RiskGate
from aiotrade.store.gate import KeyToForget
from aiotrade.store.orders import ClaimKind, KeyCompletion, NewOrder, OrderStore, StoredOrder

log = logging.getLogger(__name__)

DEFAULT_LANDING_WINDOW_MS = 10_000


@dataclass(frozen=True, slots=True)
class Placement:
    order: Order
    replayed: bool = False  # the stored first response of this Idempotency-Key


class ReplayedError(domain.DomainError):
    """The stored first response of an idempotent request that failed, replayed as it was."""

    replayed = True

    def __init__(self, status: int, body: Mapping[str, object]) -> None:
        may_exist = body.get("order_may_exist")
        super().__init__(
            str(body.get("detail", "")), order_may_exist=may_exist if isinstance(may_exist, bool) else None
        )
        self.status = status
        self.slug = str(body.get("slug", "replayed-error"))
        self.title = str(body.get("title", "Error"))


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """What an Idempotency-Key's claim leaves this request to do."""

    client_id: str  # derived from the key (the same on every replica), or fresh without one
    owner: str | None = None  # our lease on the key, for completing or releasing it
    resume: bool = False  # an earlier attempt's lease ran out: go on from what it recorded
    answer: Mapping[str, object] | None = None  # the key's stored success: replay it, send nothing


async def claim_idempotency_key(
    store: OrderStore,
    config: OrdersConfig,
    account: str,
    idempotency_key: str | None,
    request: CreateOrderRequest | CreateOcoRequest,
) -> KeyClaim:
    """Claim ``idempotency_key`` for ``request`` (without a key: a fresh client id, nothing stored). Raises
    InvalidInput for a key used with another body, Conflict (with Retry-After) while another request holds
    it, and ReplayedError for the refusal stored as its answer."""
    if idempotency_key is None:
        return KeyClaim(new_client_id())
    check_key(idempotency_key)
    client_id = client_id_for_key(account, idempotency_key)
    claim = await store.claim_key(
        account,
        idempotency_key,
        request_hash=request_fingerprint(account, request),
        client_order_id=client_id,
        lease=config.key_lease,
        retention=config.key_retention,
    )
    if claim.kind is ClaimKind.MISMATCH:
        raise domain.InvalidInput(
            "Idempotency-Key was already used with a different request",
            invalid_params=[domain.InvalidParam("Idempotency-Key", "reused with a different body")],
        )
    if claim.kind is ClaimKind.IN_FLIGHT:
        wait = (claim.locked_until - datetime.now(UTC)).total_seconds() if claim.locked_until else 1.0
        raise domain.Conflict(
            "a request with this Idempotency-Key is still in flight; retry later", retry_after_s=max(1.0, wait)
        )
    if claim.kind is ClaimKind.REPLAY:
        assert claim.response_body is not None and claim.response_status is not None
        if claim.response_status >= 400:
            raise ReplayedError(claim.response_status, claim.response_body)
        return KeyClaim(client_id, answer=claim.response_body)
    return KeyClaim(client_id, owner=claim.owner, resume=claim.kind is ClaimKind.TAKEOVER)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """Everything one placement carries from step to step."""

    gateway: ExchangeGateway
    store: OrderStore
    config: OrdersConfig
    account: str
    window_ms: int
    key: str | None
    owner: str | None
    gate: RiskGate

    async def release(self, *, forget: bool = False) -> None:
        """Let the next request with this key proceed (deleted when nothing was sent, else unlocked)."""
        if self.key is not None and self.owner is not None:
            await self.store.release_key(self.account, self.key, owner=self.owner, forget=forget)


async def place_order(
    gateway: ExchangeGateway,
    store: OrderStore,
    gate: RiskGate,
    config: OrdersConfig,
    account: str,
    request: CreateOrderRequest,
    *,
    idempotency_key: str | None = None,
) -> Placement:
    """Place an order exactly once, through the gate. Raises a domain error that says whether an order
    may exist. A gate refusal forgets the key, as if the request never came."""
    venue = gateway.venue_of(account)
    await gateway.require(venue, [request.symbol])  # an unknown symbol claims no key
    key = await claim_idempotency_key(store, config, account, idempotency_key, request)
    if key.answer is not None:
        return Placement(Order.model_validate(key.answer), replayed=True)
    client_order_id, owner, resume = key.client_id, key.owner, key.resume

    window_ms = landing_window_ms(config, gateway, account)
    attempt = _Attempt(gateway, store, config, account, window_ms, idempotency_key, owner, gate)
    async with _lease_kept(attempt):
        try:
            order = await _place(attempt, gate, account, venue, client_order_id, request, resume=resume)
        except domain.RiskRejected:
            raise  # the gate forgot the key in its own transaction
        except domain.InvalidInput:
            await attempt.release(forget=True)  # nothing was recorded or sent
            raise
        except domain.DomainError as error:
            if error.order_may_exist is False and error.status < 500:
                # A definite answer (the exchange refused): it is this key's answer from now on.
                if attempt.key is not None and attempt.owner is not None:
                    await store.complete_key(
                        account, attempt.key, owner=attempt.owner, status=error.status, body=_error_body(error)
                    )
            else:  # unsettled or transient: the next request with this key resumes this order
                await attempt.release()
            raise
        except BaseException:
            await attempt.release()
            raise
        return Placement(order)


async def _place(
    attempt: _Attempt,
    gate: RiskGate,
    account: str,
    venue: str,
    client_order_id: str,
    request: CreateOrderRequest,
    *,
    resume: bool,
) -> Order:
    existing = await attempt.store.get(account, client_order_id) if resume else None
    if existing is None:
        # No order row means no attempt has passed the gate yet: a first request, or a takeover after a
        # crash inside the gate.
        admitted = await gate.admit(
            account,
            request,
            lambda prepared: _new_order(account, venue, client_order_id, prepared),
            forget_on_refusal=KeyToForget(attempt.key, attempt.owner) if attempt.key and attempt.owner else None,
            first_events=[("send", {"attempt": 1})],
        )
        if not admitted.existing:
            return await _send_until_settled(attempt, admitted.order, first_attempt_recorded=True)
        existing = admitted.order
    # An earlier attempt got this far and may have sent it: find out what it did first.
    await attempt.store.audit(account, client_order_id, "create_resumed", status=existing.status)
    if existing.status not in UNSETTLED_STATUSES:
        return await _finish(attempt, existing)
    # When the earlier attempt last sent is not known for sure: count the window from now.
    found = await _settle_by_lookup(attempt, existing, since_ms=_now_ms())
    if found is not None:
        return found
    return await _send_until_settled(attempt, existing, first_attempt_recorded=False)


async def _send_until_settled(attempt: _Attempt, order: StoredOrder, *, first_attempt_recorded: bool) -> Order:
    account, client_order_id = order.account, order.client_order_id
    prepared = _prepared(order)
    for number in range(1, attempt.config.max_sends + 1):
        if number > 1 or not first_attempt_recorded:
            # Touches updated_at too: the reconciler leaves a recently sent PENDING order alone.
            touched = await attempt.store.transition(
                account, client_order_id, OrderStatus.PENDING, event="send", detail={"attempt": number}
            )
            assert touched is not None
            order = touched
        try:
            seen = await attempt.gateway.place_order(account, prepared, client_order_id)
        except domain.DomainError as error:
            # The request was signed after the limiter let it go, at the latest now: count the landing
            # window from now, not from before the queue.
            failed_at_ms = _now_ms()
            if error.order_may_exist is False:
                await attempt.store.transition(
                    account,
                    client_order_id,
                    OrderStatus.REJECTED,
                    event="rejected",
                    detail={"error": error.detail},
                    error=error.detail,
                )
                raise
            await attempt.store.audit(account, client_order_id, "send_outcome_unknown", error=error.detail)
            found = await _settle_by_lookup(attempt, order, since_ms=failed_at_ms)
            if found is not None:
                return found
            continue  # the exchange says it never landed, and it no longer can: send again
        placed = await adopt(attempt.store, order, seen, event="placed", complete_key=_completion(attempt))
        return await _unless_halted(attempt, placed)
    detail = f"order {client_order_id} did not reach the exchange after {attempt.config.max_sends} attempts"
    # Still PENDING (nothing placed): a retry with the same key resumes it under the same client id.
    await attempt.store.transition(
        account, client_order_id, OrderStatus.PENDING, event="abandoned", detail={"error": detail}, error=detail
    )
    raise domain.UpstreamUnavailable(
        detail + "; no order was placed — retry with the same Idempotency-Key", order_may_exist=False
    )


async def _settle_by_lookup(attempt: _Attempt, order: StoredOrder, *, since_ms: int) -> Order | None:
    """The order if the exchange has it; None once it cannot have it; UNKNOWN if we cannot ask."""
    gateway, account, client_order_id = attempt.gateway, order.account, order.client_order_id
    try:
        seen = await gateway.find_order(account, order.symbol, client_order_id)
        if seen is None:
            # Not there yet is not "never": wait until the send can no longer land, then ask again.
            wait_s = (since_ms + attempt.window_ms + attempt.config.clock_skew_ms - _now_ms()) / 1000
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            seen = await gateway.find_order(account, order.symbol, client_order_id)
    except domain.DomainError as error:
        await attempt.store.transition(
            account, client_order_id, OrderStatus.UNKNOWN, event="unknown", detail={"error": error.detail},
            error=error.detail,
        )  # fmt: skip
        raise domain.UpstreamUnavailable(
            f"order {client_order_id} may or may not have been placed and the exchange cannot be asked "
            "now; it will be reconciled — retry with the same Idempotency-Key to learn the outcome",
            order_may_exist=True,
            retry_after_s=error.retry_after_s,
        ) from error
    if seen is None:
        await attempt.store.audit(account, client_order_id, "not_found_after_window")
        return None
    found = await adopt(attempt.store, order, seen, event="found_by_lookup", complete_key=_completion(attempt))
    return await _unless_halted(attempt, found)


async def _unless_halted(attempt: _Attempt, order: StoredOrder) -> Order:
    """An order that went live while the account was being halted is cancelled at once: a placement racing
    the kill switch is refused (by the gate) or cancelled (here), never left open."""
    if order.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        return order.as_order()
    if (await attempt.gate.trading_state(order.account)) is not TradingState.HALTED:
        return order.as_order()
    await attempt.store.audit(order.account, order.client_order_id, "cancel_requested", by="halt")
    try:
        await attempt.gateway.cancel_order(order.account, order.symbol, order.client_order_id)
    except domain.OrderNotFound:
        pass  # filled or cancelled meanwhile
    except domain.DomainError as error:
        log.error("order %s placed during a halt could not be cancelled: %s", order.client_order_id, error.detail)
        return order.as_order()  # the reconciler cancels it (live orders of a HALTED account)
    refreshed = await refresh(attempt.gateway, attempt.store, order)
    return (refreshed or order).as_order()


async def _finish(attempt: _Attempt, order: StoredOrder) -> Order:
    """An order already settled by an earlier attempt (or the reconciler): its answer, stored for the key."""
    result = order.as_order()
    completion = _completion(attempt)
    if completion is not None:
        final = completion(order)
        await attempt.store.complete_key(order.account, final.key, owner=final.owner, status=201, body=final.body)
    return result


def _completion(attempt: _Attempt) -> Callable[[StoredOrder], KeyCompletion] | None:
    """How the key's first response is made from the order it ends with (None without a key)."""
    if attempt.key is None or attempt.owner is None:
        return None
    key, owner = attempt.key, attempt.owner
    return lambda order: KeyCompletion(key, owner, 201, order.as_order().model_dump(mode="json"))


@contextlib.asynccontextmanager
async def _lease_kept(attempt: _Attempt) -> AsyncIterator[None]:
    """Renew the key's lease while the work runs, however long the exchange makes it take: a retry
    must never take the key over from a request that is still sending."""
    if attempt.key is None or attempt.owner is None:
        yield
        return
    account, key, owner, lease = attempt.account, attempt.key, attempt.owner, attempt.config.key_lease

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            if not await attempt.store.renew_key(account, key, owner=owner, lease=lease):
                log.error("lease of Idempotency-Key %r on %s was lost while in use", key, account)
                return

    keeper = asyncio.create_task(renew(), name="aiotrade-key-lease")
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


def _new_order(account: str, venue: str, client_order_id: str, order: PreparedOrder) -> NewOrder:
    return NewOrder(
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
        reference_price=order.reference_price,
        stop_price=order.stop_price,
    )


def _prepared(order: StoredOrder) -> PreparedOrder:
    """What to send for a recorded order: exactly what the gate approved."""
    return PreparedOrder(
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        amount=order.amount,
        quote_amount=order.quote_amount,
        price=order.price,
        time_in_force=TimeInForce(order.time_in_force) if order.time_in_force else None,
        stop_price=order.stop_price,
    )


def landing_window_ms(config: OrdersConfig, gateway: ExchangeGateway, account: str) -> int:
    """How long after a send the exchange may still accept it, for this account."""
    if config.landing_window_ms is not None:
        return config.landing_window_ms
    return gateway.recv_window_ms(account) or DEFAULT_LANDING_WINDOW_MS


def _error_body(error: domain.DomainError) -> dict[str, object]:
    return {"slug": error.slug, "title": error.title, "detail": error.detail, "order_may_exist": error.order_may_exist}


def _now_ms() -> int:
    return int(time.time() * 1000)


def settled_horizon(config: OrdersConfig, window_ms: int) -> timedelta:
    """How old an unsettled order must be before the reconciler may call it never placed."""
    return timedelta(milliseconds=window_ms + config.clock_skew_ms) + config.key_lease
