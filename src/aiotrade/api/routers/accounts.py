"""An account as a desk handles it: the kill switch and resume, cancel-all, OCO order lists, balances, fills."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from aiotrade.api.deps import (
    Gate,
    GateStoreDep,
    Gateway,
    OrderIdempotencyKey,
    OrdersConfigDep,
    PathAccount,
    Store,
)
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.account import Balances, FillPage
from aiotrade.models.common import Timestamp
from aiotrade.models.keys import Scope
from aiotrade.models.orders import (
    CancelAllReport,
    CreateOcoRequest,
    HaltReport,
    HaltRequest,
    OrderList,
    ResumeRequest,
)
from aiotrade.models.risk import TradingStateView
from aiotrade.services import accounts
from aiotrade.services.orders import halt, order_lists

router = APIRouter(prefix="/api/v1/accounts/{account}", tags=["accounts"], responses=PROBLEM_RESPONSES)

Symbol = Annotated[str | None, Query(min_length=3, max_length=64, description="A unified symbol, e.g. `BTC/USDT`.")]


@router.post(
    "/halt",
    operation_id="halt_account",
    summary="Kill switch: HALTED, then every open order of the account cancelled (ours or not), each outcome",
    dependencies=[require(Scope.TRADE, account="path")],
)
async def halt_account(
    gateway: Gateway, store: Store, gate_store: GateStoreDep, account: PathAccount, body: HaltRequest | None = None
) -> HaltReport:
    reason = body.reason if body is not None else None
    return await halt.halt_account(gateway, store, gate_store, account.name, reason=reason)


@router.post(
    "/resume",
    operation_id="resume_account",
    summary="Trading ACTIVE again after a halt (scope admin)",
    dependencies=[require(Scope.ADMIN, account="path")],
)
async def resume_account(
    gateway: Gateway, store: Store, gate_store: GateStoreDep, account: PathAccount, body: ResumeRequest | None = None
) -> TradingStateView:
    reason = body.reason if body is not None else None
    return await halt.resume_account(gateway, store, gate_store, account.name, reason=reason)


@router.delete(
    "/orders",
    operation_id="cancel_all_orders",
    summary="Cancel every open order of the account (of one symbol), ours or not; each outcome",
    dependencies=[require(Scope.TRADE, account="path")],
)
async def cancel_all_orders(
    gateway: Gateway, store: Store, account: PathAccount, symbol: Symbol = None
) -> CancelAllReport:
    return await halt.cancel_all_orders(gateway, store, account.name, symbol)


@router.post(
    "/order-lists",
    operation_id="create_oco",
    summary="Place an OCO exactly once: a post-only limit and a stop-loss-limit; one fills, the other expires",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A request with this Idempotency-Key is still in flight (see Retry-After)"}},
    dependencies=[require(Scope.TRADE, account="path")],
)
async def create_oco(
    gateway: Gateway,
    store: Store,
    gate: Gate,
    config: OrdersConfigDep,
    account: PathAccount,
    body: CreateOcoRequest,
    response: Response,
    idempotency_key: OrderIdempotencyKey,
) -> OrderList:
    placed = await order_lists.place_oco(
        gateway, store, gate, config, account.name, body, idempotency_key=idempotency_key
    )
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return placed.order_list


@router.get(
    "/balances",
    operation_id="get_balances",
    summary="Free, used (in open orders) and total per asset, as the venue reports them now",
    dependencies=[require(Scope.READ, account="path")],
)
async def get_balances(gateway: Gateway, account: PathAccount) -> Balances:
    return await accounts.get_balances(gateway, account.name)


@router.get(
    "/fills",
    operation_id="list_fills",
    summary="The account's fills, newest first (cursor-paginated), with fees and their currency",
    dependencies=[require(Scope.READ, account="path")],
)
async def list_fills(
    store: Store,
    account: PathAccount,
    symbol: Symbol = None,
    executed_from: Annotated[Timestamp | None, Query(alias="from", description="ISO 8601 with a zone")] = None,
    executed_to: Annotated[Timestamp | None, Query(alias="to", description="ISO 8601 with a zone, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FillPage:
    return await accounts.get_fills(
        store, account.name, symbol=symbol, executed_from=executed_from, executed_to=executed_to, cursor=cursor,
        limit=limit,
    )  # fmt: skip
