"""Reconciliation: settle orders whose outcome we do not know, and keep live ones in step.

Never sends an order: an order the exchange does not have once its send can no longer land (and no
request holds its key) is marked REJECTED. A live order of a HALTED account is cancelled. A live order the
venue no longer knows (it lost its state) is left as stored and logged: the store is our record of it.
Counted in ``aiotrade_reconciler_runs_total`` and ``aiotrade_reconciler_settlements_total`` (by outcome).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

from aiotrade import errors as domain
from aiotrade.config import OrdersConfig
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import UNSETTLED_STATUSES, OrderStatus
from aiotrade.models.risk import TradingState
from aiotrade.observability.metrics import RECONCILER_RUNS, RECONCILER_SETTLEMENTS
from aiotrade.services.orders.placement import landing_window_ms, settled_horizon
from aiotrade.services.orders.settlement import adopt, record_fills, refresh
from aiotrade.store.orders import OrderStore, StoredOrder
from aiotrade.store.risk import RiskStore

log = logging.getLogger(__name__)


async def reconcile(
    gateway: ExchangeGateway, store: OrderStore, config: OrdersConfig, risk_store: RiskStore | None = None
) -> int:
    """One pass over the orders that need a look; returns how many changed."""
    RECONCILER_RUNS.inc()
    changed = 0
    halted: dict[str, bool] = {}
    now = datetime.now(UTC)
    candidates = await store.unsettled(older_than=now)
    for order in candidates:
        if order.status in UNSETTLED_STATUSES:
            horizon = settled_horizon(config, landing_window_ms(config, gateway, order.account))
            if order.updated_at >= now - horizon:
                continue  # its send may still land, or a request may still resume it
        try:
            changed += await _reconcile_one(gateway, store, order)
            if risk_store is not None and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                if order.account not in halted:
                    state = (await risk_store.trading_state(order.account)).state
                    halted[order.account] = state is TradingState.HALTED
                if halted[order.account]:
                    changed += await _cancel_halted(gateway, store, order)
        except domain.DomainError as error:
            log.warning("reconcile of %s failed: %s", order.client_order_id, error.detail)
        except Exception:  # one bad row must not stop the others from being reconciled
            log.exception("reconcile of %s failed", order.client_order_id)
    return changed


async def _cancel_halted(gateway: ExchangeGateway, store: OrderStore, order: StoredOrder) -> int:
    """An order still open on a HALTED account (it went live while the halt ran): cancel it now."""
    log.warning("order %s is open on HALTED account %s: cancelling it", order.client_order_id, order.account)
    await store.audit(order.account, order.client_order_id, "cancel_requested", by="reconciler (halted)")
    with contextlib.suppress(domain.OrderNotFound):
        await gateway.cancel_order(order.account, order.symbol, order.client_order_id)
    refreshed = await refresh(gateway, store, order)
    return 1 if refreshed is not None and refreshed.status is not order.status else 0


async def _reconcile_one(gateway: ExchangeGateway, store: OrderStore, order: StoredOrder) -> int:
    seen = await gateway.find_order(order.account, order.symbol, order.client_order_id)
    if seen is None:
        if order.status not in UNSETTLED_STATUSES:
            log.warning(
                "order %s is %s in the store but the venue does not know it: not confirmed by the venue",
                order.client_order_id,
                order.status,
            )
            return 0
        detail = "never reached the exchange (settled by the reconciler)"
        # Compare-and-set: a retry that resumed this order since we read it wins.
        settled = await store.transition(
            order.account,
            order.client_order_id,
            OrderStatus.REJECTED,
            event="reconciled_not_found",
            unless_changed_since=order.updated_at,
            error=detail,
        )
        if settled is None:
            return 0
        RECONCILER_SETTLEMENTS.labels("not_found").inc()
        return 1
    event = "reconciled" if seen.status != order.status else None
    updated = await adopt(store, order, seen, event=event, status=seen.status)
    if order.status in UNSETTLED_STATUSES and seen.status not in UNSETTLED_STATUSES:
        RECONCILER_SETTLEMENTS.labels(seen.status.value).inc()
    if updated.filled > 0 and updated.exchange_order_id:
        await record_fills(gateway, store, updated)
    return 1 if event else 0
