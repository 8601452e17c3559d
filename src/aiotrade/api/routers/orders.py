"""Orders over REST: create (exactly once, `Idempotency-Key`), list, get, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AwareDatetime

from aiotrade.api.deps import Gate, Gateway, OrderIdempotencyKey, OrdersConfigDep, PathAccount, Store
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.keys import Scope
from aiotrade.models.orders import CreateOrderRequest, Order, OrderPage, OrderStatus
from aiotrade.services.orders import placement, queries

router = APIRouter(prefix="/api/v1/accounts/{account}/orders", tags=["orders"], responses=PROBLEM_RESPONSES)

OrderId = Annotated[str, Path(description="Our order id (client order id) or the exchange's.", max_length=128)]


@router.post(
    "",
    operation_id="create_order",
    summary="Place an order exactly once",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A request with this Idempotency-Key is still in flight (see Retry-After)"}},
    dependencies=[require(Scope.TRADE, account="path")],
)
async def create_order(
    gateway: Gateway,
    store: Store,
    gate: Gate,
    config: OrdersConfigDep,
    account: PathAccount,
    body: CreateOrderRequest,
    response: Response,
    idempotency_key: OrderIdempotencyKey,
) -> Order:
    placed = await placement.place_order(
        gateway, store, gate, config, account.name, body, idempotency_key=idempotency_key
    )
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return placed.order


@router.get(
    "",
    operation_id="list_orders",
    summary="Order history, newest first (cursor-paginated)",
    dependencies=[require(Scope.READ, account="path")],
)
async def list_orders(
    store: Store,
    account: PathAccount,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    created_from: Annotated[AwareDatetime | None, Query(alias="from", description="ISO 8601 with a zone")] = None,
    created_to: Annotated[AwareDatetime | None, Query(alias="to", description="ISO 8601 with a zone")] = None,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OrderPage:
    return await queries.get_order_history(
        store, account.name, symbol=symbol, statuses=status_ or (), created_from=created_from,
        created_to=created_to, cursor=cursor, limit=limit,
    )  # fmt: skip


@router.get(
    "/{order_id}",
    operation_id="get_order",
    summary="One order (refreshed from the exchange)",
    dependencies=[require(Scope.READ, account="path")],
)
async def get_order(gateway: Gateway, store: Store, account: PathAccount, order_id: OrderId) -> Order:
    return await queries.get_order(gateway, store, account.name, order_id)


@router.delete(
    "/{order_id}",
    operation_id="cancel_order",
    summary="Cancel an open order",
    responses={409: {"description": "The order is already closed"}},
    dependencies=[require(Scope.TRADE, account="path")],
)
async def cancel_order(gateway: Gateway, store: Store, account: PathAccount, order_id: OrderId) -> Order:
    return await queries.cancel_order(gateway, store, account.name, order_id)
