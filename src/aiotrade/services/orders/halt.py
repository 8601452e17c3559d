"""The kill switch and cancel-all: stop everything at once, exchange-wide.

`halt_account` sets HALTED inside the account's gate critical section — so every order admitted before it
is recorded and none is admitted after — then waits (bounded) for orders already in flight to settle,
and cancels every open order of the account on the exchange, ours or not, reporting each outcome. A
placement that is acknowledged after the halt looked sees HALTED and cancels its own order (see
`placement.py`), so a placement racing the halt is either refused or cancelled, never left open.
Calling it again is harmless: the state stays HALTED and there is nothing left to cancel.
`resume_account` (an admin's act, decided by the route) sets ACTIVE in the same critical section.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiotrade import errors as domain
from aiotrade.domain.records import VenueOrder
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import CancelAllReport, CancelOutcome, HaltReport
from aiotrade.models.risk import TradingState, TradingStateView
from aiotrade.services.orders.settlement import refresh
from aiotrade.store.gate import GateStore
from aiotrade.store.orders import OrderStore

SETTLE_POLL_S = 0.1
# Long enough for a send in flight to be acknowledged; one that takes longer cancels itself on its ack.
DEFAULT_SETTLE_TIMEOUT_S = 5.0


async def halt_account(
    gateway: ExchangeGateway,
    store: OrderStore,
    gate_store: GateStore,
    account: str,
    *,
    reason: str | None,
    settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S,
) -> HaltReport:
    """HALTED, then every open order of the account cancelled (see the module docstring)."""
    gateway.venue_of(account)
    state = await gate_store.set_trading_state(account, TradingState.HALTED, reason or "kill switch")
    await store.audit(account, None, "halted", reason=state.reason)
    deadline = time.monotonic() + settle_timeout_s
    # Polled: the orders may be another replica's, whose progress shows only in the store.
    while (pending := await store.in_flight(account)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(SETTLE_POLL_S)
    outcomes = await _cancel_open(gateway, store, account, None)
    return HaltReport(
        account=account,
        state=state.state.value,
        reason=state.reason,
        outcomes=outcomes,
        still_in_flight=[o.client_order_id for o in pending],
    )


async def resume_account(
    gateway: ExchangeGateway, store: OrderStore, gate_store: GateStore, account: str, *, reason: str | None
) -> TradingStateView:
    """ACTIVE again, inside the account's critical section (no order is admitted under the old state)."""
    gateway.venue_of(account)
    state = await gate_store.set_trading_state(account, TradingState.ACTIVE, reason or "resumed")
    await store.audit(account, None, "resumed", reason=state.reason)
    return state


async def cancel_all_orders(
    gateway: ExchangeGateway, store: OrderStore, account: str, symbol: str | None = None
) -> CancelAllReport:
    """Cancel every open order of the account on the exchange (of one symbol, if given), ours or not."""
    venue = gateway.venue_of(account)
    if symbol is not None:
        await gateway.require(venue, [symbol])
    return CancelAllReport(account=account, symbol=symbol, outcomes=await _cancel_open(gateway, store, account, symbol))


async def _cancel_open(
    gateway: ExchangeGateway, store: OrderStore, account: str, symbol: str | None
) -> list[CancelOutcome]:
    open_orders = await gateway.open_orders(account, symbol)
    return list(await asyncio.gather(*(_cancel_one(gateway, store, account, o) for o in open_orders)))


async def _cancel_one(gateway: ExchangeGateway, store: OrderStore, account: str, seen: VenueOrder) -> CancelOutcome:
    ours = await store.get(account, seen.client_order_id) if seen.client_order_id else None
    base = {"id": ours.client_order_id if ours else None, "exchange_order_id": seen.exchange_order_id}
    try:
        if ours is not None:
            await store.audit(account, ours.client_order_id, "cancel_requested", by="cancel-all")
            with contextlib.suppress(domain.OrderNotFound):  # closed meanwhile: the refresh tells how
                await gateway.cancel_order(account, ours.symbol, ours.client_order_id)
            refreshed = await refresh(gateway, store, ours)
            status = refreshed.status if refreshed is not None else None
        else:
            try:
                after = await gateway.cancel_by_venue_id(account, seen.symbol, seen.exchange_order_id)
            except domain.OrderNotFound:
                return CancelOutcome(**base, symbol=seen.symbol, outcome="already_closed")
            status = after.status if after is not None else None
    except domain.DomainError as error:
        return CancelOutcome(**base, symbol=seen.symbol, outcome="failed", error=error.detail)
    outcome = "canceled" if status is None or status.value == "CANCELED" else "already_closed"
    return CancelOutcome(**base, symbol=seen.symbol, outcome=outcome, status=status)
