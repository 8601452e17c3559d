"""Placing an OCO exactly once, through the risk gate: the same promise as `placement.py`, for two legs.

An OCO is one request to the venue (Binance: POST /api/v3/orderList/oco) that creates two orders — a
post-only limit and a stop-loss-limit for one amount — of which at most one executes: when one fills or
triggers, the venue expires the other. Here
- the list id is fixed before any I/O (derived from the `Idempotency-Key`, else random) and each leg's
  client id is derived from it (`models.orders.leg_ids`), so every replica and every retry names them alike;
- the gate judges both legs together (each counts against the limits, each is funded from the same
  balances) and records both as PENDING in one critical section, or neither;
- the request is sent once; after an ambiguous failure the legs are looked up by their client ids, and only
  when the venue has neither once the send can no longer land is it sent again, under the same ids;
- the key's first response (the whole list) is stored in the transaction that records the last leg.
From then on each leg is an order like any other: the reconciler keeps both in step (one FILLED, the other
EXPIRED), a cancel of either cancels the list on the venue, and the kill switch cancels them with the rest.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiotrade import errors as domain
from aiotrade.config import OrdersConfig
from aiotrade.domain.records import VenueOrder
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import UNSETTLED_STATUSES, CreateOcoRequest, OrderList, OrderStatus, leg_ids
from aiotrade.models.risk import TradingState
from aiotrade.services.orders.placement import (
    _Attempt,
    _error_body,
    _lease_kept,
    _new_order,
    _now_ms,
    _prepared,
    claim_idempotency_key,
    landing_window_ms,
)
from aiotrade.services.orders.settlement import adopt, refresh
from aiotrade.services.risk.gate import RiskGate
from aiotrade.store.gate import KeyToForget
from aiotrade.store.orders import KeyCompletion, OrderStore, StoredOrder

# How the request names a leg's field when the gate finds fault with it (`legs[1].price`: the stop's limit).
_LEG_FIELDS = ({"price": "price"}, {"price": "stop_limit_price", "stop_price": "stop_price"})
_LEG_PARAM = re.compile(r"^legs\[([01])\]\.(.+)$")


@dataclass(frozen=True, slots=True)
class ListPlacement:
    order_list: OrderList
    replayed: bool = False


async def place_oco(
    gateway: ExchangeGateway,
    store: OrderStore,
    gate: RiskGate,
    config: OrdersConfig,
    account: str,
    request: CreateOcoRequest,
    *,
    idempotency_key: str | None = None,
) -> ListPlacement:
    """Place an OCO exactly once, through the gate (see the module docstring). Raises a domain error that
    says whether the orders may exist; a gate refusal forgets the key, as if the request never came."""
    venue = gateway.venue_of(account)
    await gateway.require(venue, [request.symbol])
    key = await claim_idempotency_key(store, config, account, idempotency_key, request)
    if key.answer is not None:
        return ListPlacement(OrderList.model_validate(key.answer), replayed=True)
    list_id, owner, resume = key.client_id, key.owner, key.resume

    attempt = _Attempt(
        gateway, store, config, account, landing_window_ms(config, gateway, account), idempotency_key, owner, gate
    )
    async with _lease_kept(attempt):
        try:
            legs = await _place(attempt, request, venue, list_id, resume=resume)
        except domain.RiskRejected:
            raise  # the gate forgot the key in its own transaction
        except domain.InvalidInput as error:
            await attempt.release(forget=True)  # nothing was recorded or sent
            if not any(_LEG_PARAM.match(p.name) for p in error.invalid_params):
                raise
            raise _named_for_request(error) from error
        except domain.DomainError as error:
            if error.order_may_exist is False and error.status < 500:
                if attempt.key is not None and attempt.owner is not None:
                    await store.complete_key(
                        account, attempt.key, owner=attempt.owner, status=error.status, body=_error_body(error)
                    )
            else:
                await attempt.release()
            raise
        except BaseException:
            await attempt.release()
            raise
        return ListPlacement(_order_list(list_id, request, legs))


async def _place(
    attempt: _Attempt, request: CreateOcoRequest, venue: str, list_id: str, *, resume: bool
) -> tuple[StoredOrder, ...]:
    ids = leg_ids(list_id)
    existing = await _recorded(attempt, ids) if resume else ()
    if not existing:
        admitted = await attempt.gate.admit_list(
            attempt.account,
            request.legs(),
            lambda prepared: [_new_order(attempt.account, venue, i, p) for i, p in zip(ids, prepared, strict=True)],
            forget_on_refusal=KeyToForget(attempt.key, attempt.owner) if attempt.key and attempt.owner else None,
            first_events=[("send", {"attempt": 1, "order_list": list_id})],
        )
        if not admitted.existing:
            return await _send_until_settled(attempt, list_id, request, admitted.orders, first_recorded=True)
        existing = admitted.orders
    for leg in existing:
        await attempt.store.audit(attempt.account, leg.client_order_id, "create_resumed", status=leg.status)
    if len(existing) == len(ids) and not any(leg.status in UNSETTLED_STATUSES for leg in existing):
        await _complete(attempt, list_id, request, existing)
        return existing
    found = await _settle_by_lookup(attempt, list_id, request, existing, since_ms=_now_ms())
    if found is not None:
        return found
    return await _send_until_settled(attempt, list_id, request, existing, first_recorded=False)


async def _send_until_settled(
    attempt: _Attempt,
    list_id: str,
    request: CreateOcoRequest,
    legs: Sequence[StoredOrder],
    *,
    first_recorded: bool,
) -> tuple[StoredOrder, ...]:
    store, account = attempt.store, attempt.account
    limit, stop = (_prepared(leg) for leg in legs)
    ids = leg_ids(list_id)
    for number in range(1, attempt.config.max_sends + 1):
        if number > 1 or not first_recorded:
            legs = [await _touch(store, leg, number) for leg in legs]
        try:
            seen = await attempt.gateway.place_oco(account, limit, stop, list_id, ids)
        except domain.DomainError as error:
            failed_at_ms = _now_ms()
            if error.order_may_exist is False:
                for leg in legs:
                    await store.transition(
                        account, leg.client_order_id, OrderStatus.REJECTED, event="rejected",
                        detail={"error": error.detail}, error=error.detail,
                    )  # fmt: skip
                raise
            for leg in legs:
                await store.audit(account, leg.client_order_id, "send_outcome_unknown", error=error.detail)
            found = await _settle_by_lookup(attempt, list_id, request, legs, since_ms=failed_at_ms)
            if found is not None:
                return found
            continue
        by_id = {s.client_order_id: s for s in seen}
        placed = await _adopt_all(attempt, list_id, request, legs, by_id, event="placed")
        return await _unless_halted(attempt, placed)
    detail = f"order list {list_id} did not reach the exchange after {attempt.config.max_sends} attempts"
    for leg in legs:
        await store.transition(
            account, leg.client_order_id, OrderStatus.PENDING, event="abandoned", detail={"error": detail},
            error=detail,
        )  # fmt: skip
    raise domain.UpstreamUnavailable(
        detail + "; no order was placed — retry with the same Idempotency-Key", order_may_exist=False
    )


async def _settle_by_lookup(
    attempt: _Attempt,
    list_id: str,
    request: CreateOcoRequest,
    legs: Sequence[StoredOrder],
    *,
    since_ms: int,
) -> tuple[StoredOrder, ...] | None:
    """The legs if the venue has them (it creates both or neither); None once it cannot have them; UNKNOWN
    if it cannot be asked."""
    gateway, account = attempt.gateway, attempt.account
    try:
        seen = await _look_up(gateway, account, legs)
        if not seen:
            wait_s = (since_ms + attempt.window_ms + attempt.config.clock_skew_ms - _now_ms()) / 1000
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            seen = await _look_up(gateway, account, legs)
    except domain.DomainError as error:
        for leg in legs:
            await attempt.store.transition(
                account, leg.client_order_id, OrderStatus.UNKNOWN, event="unknown", detail={"error": error.detail},
                error=error.detail,
            )  # fmt: skip
        raise domain.UpstreamUnavailable(
            f"order list {list_id} may or may not have been placed and the exchange cannot be asked now; it "
            "will be reconciled — retry with the same Idempotency-Key to learn the outcome",
            order_may_exist=True,
            retry_after_s=error.retry_after_s,
        ) from error
    if not seen:
        for leg in legs:
            await attempt.store.audit(account, leg.client_order_id, "not_found_after_window")
        return None
    found = await _adopt_all(attempt, list_id, request, legs, seen, event="found_by_lookup")
    return await _unless_halted(attempt, found)


async def _look_up(gateway: ExchangeGateway, account: str, legs: Sequence[StoredOrder]) -> dict[str, VenueOrder]:
    found = await asyncio.gather(*(gateway.find_order(account, leg.symbol, leg.client_order_id) for leg in legs))
    return {leg.client_order_id: seen for leg, seen in zip(legs, found, strict=True) if seen is not None}


async def _adopt_all(
    attempt: _Attempt,
    list_id: str,
    request: CreateOcoRequest,
    legs: Sequence[StoredOrder],
    seen: dict[str, VenueOrder],
    *,
    event: str,
) -> tuple[StoredOrder, ...]:
    """Each leg the venue reported, recorded; the key's answer (the whole list) with the last of them."""
    done: list[StoredOrder] = []
    reported = [leg for leg in legs if leg.client_order_id in seen]
    for index, leg in enumerate(legs):
        if leg.client_order_id not in seen:
            done.append(leg)  # not reported (never seen on Binance, which makes both): the reconciler looks
            continue
        last = leg is reported[-1]
        completion = _completion(attempt, list_id, request, done, legs[index + 1 :]) if last else None
        done.append(await adopt(attempt.store, leg, seen[leg.client_order_id], event=event, complete_key=completion))
    return tuple(done)


async def _unless_halted(attempt: _Attempt, legs: tuple[StoredOrder, ...]) -> tuple[StoredOrder, ...]:
    """A list that went live while the account was being halted is cancelled at once (see `placement.py`)."""
    live = [leg for leg in legs if leg.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)]
    if not live or (await attempt.gate.trading_state(attempt.account)) is not TradingState.HALTED:
        return legs
    await attempt.store.audit(attempt.account, live[0].client_order_id, "cancel_requested", by="halt")
    try:  # cancelling one leg cancels the list on the venue
        await attempt.gateway.cancel_order(attempt.account, live[0].symbol, live[0].client_order_id)
    except domain.OrderNotFound:
        pass
    except domain.DomainError:
        return legs  # the reconciler cancels live orders of a HALTED account
    refreshed = [await refresh(attempt.gateway, attempt.store, leg) for leg in legs]
    return tuple(new or old for new, old in zip(refreshed, legs, strict=True))


async def _complete(attempt: _Attempt, list_id: str, request: CreateOcoRequest, legs: Sequence[StoredOrder]) -> None:
    if attempt.key is not None and attempt.owner is not None:
        body = _order_list(list_id, request, legs).model_dump(mode="json")
        await attempt.store.complete_key(attempt.account, attempt.key, owner=attempt.owner, status=201, body=body)


def _completion(
    attempt: _Attempt,
    list_id: str,
    request: CreateOcoRequest,
    before: Sequence[StoredOrder],
    after: Sequence[StoredOrder],
) -> Callable[[StoredOrder], KeyCompletion] | None:
    if attempt.key is None or attempt.owner is None:
        return None
    key, owner = attempt.key, attempt.owner

    def completion(leg: StoredOrder) -> KeyCompletion:
        body = _order_list(list_id, request, [*before, leg, *after]).model_dump(mode="json")
        return KeyCompletion(key, owner, 201, body)

    return completion


async def _recorded(attempt: _Attempt, ids: Sequence[str]) -> tuple[StoredOrder, ...]:
    found = [await attempt.store.get(attempt.account, i) for i in ids]
    return tuple(leg for leg in found if leg is not None)


async def _touch(store: OrderStore, leg: StoredOrder, number: int) -> StoredOrder:
    touched = await store.transition(
        leg.account, leg.client_order_id, OrderStatus.PENDING, event="send", detail={"attempt": number}
    )
    assert touched is not None
    return touched


def _order_list(list_id: str, request: CreateOcoRequest, legs: Sequence[StoredOrder]) -> OrderList:
    return OrderList(
        id=list_id,
        account=legs[0].account,
        symbol=request.symbol,
        side=request.side,
        orders=[leg.as_order() for leg in legs],
    )


def _named_for_request(error: domain.InvalidInput) -> domain.InvalidInput:
    """A leg's market breach, named as the OCO request names the field (the stop leg's price is
    `stop_limit_price`)."""
    renamed = []
    for param in error.invalid_params:
        found = _LEG_PARAM.match(param.name)
        name = _LEG_FIELDS[int(found.group(1))].get(found.group(2), found.group(2)) if found else param.name
        renamed.append(domain.InvalidParam(name, param.reason))
    return domain.InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in renamed), invalid_params=renamed)
