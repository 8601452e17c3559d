"""Dependencies: the shared resources the lifespan opened, the account a request acts on, the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request

from aiotrade import errors as domain
from aiotrade.api import idempotency
from aiotrade.api.security import PRINCIPAL_STATE, Principal, body_account
from aiotrade.compute import ComputePool
from aiotrade.config import OrdersConfig, Settings
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.services.risk.gate import RiskGate
from aiotrade.store.api_keys import ApiKeyStore
from aiotrade.store.gate import GateStore
from aiotrade.store.orders import OrderStore
from aiotrade.store.portfolio import PortfolioStore
from aiotrade.store.risk import RiskStore


@dataclass(frozen=True, slots=True)
class AccountRef:
    """A configured account and its venue, resolved once per request."""

    name: str
    venue: str


async def get_gateway(request: Request) -> ExchangeGateway:
    return request.app.state.gateway


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> OrderStore:
    return request.app.state.store


async def get_risk_store(request: Request) -> RiskStore:
    return request.app.state.risk_store


async def get_portfolio_store(request: Request) -> PortfolioStore:
    return request.app.state.portfolio_store


async def get_gate(request: Request) -> RiskGate:
    return request.app.state.gate


async def get_gate_store(request: Request) -> GateStore:
    return request.app.state.gate_store


async def get_orders_config(request: Request) -> OrdersConfig:
    return request.app.state.settings.orders


async def get_compute(request: Request) -> ComputePool:
    return request.app.state.compute


Gateway = Annotated[ExchangeGateway, Depends(get_gateway)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Store = Annotated[OrderStore, Depends(get_store)]
RiskStoreDep = Annotated[RiskStore, Depends(get_risk_store)]
PortfolioStoreDep = Annotated[PortfolioStore, Depends(get_portfolio_store)]
Gate = Annotated[RiskGate, Depends(get_gate)]
GateStoreDep = Annotated[GateStore, Depends(get_gate_store)]
OrdersConfigDep = Annotated[OrdersConfig, Depends(get_orders_config)]
# Worker processes for heavy maths (aiotrade.compute): services take it as an argument.
Compute = Annotated[ComputePool, Depends(get_compute)]


def resolve_account(gateway: ExchangeGateway, settings: Settings, name: str | None) -> AccountRef:
    """The named account (or the default one); an unknown name is a 404 that lists no other account."""
    account = name or settings.default_account
    try:
        return AccountRef(account, gateway.venue_of(account))
    except domain.UnknownAccount:
        raise domain.UnknownAccount(f"unknown account {account!r}") from None


async def account_from_path(
    gateway: Gateway,
    settings: AppSettings,
    account: Annotated[str, Path(description="A configured account, e.g. `paper`.", max_length=64)],
) -> AccountRef:
    return resolve_account(gateway, settings, account)


async def account_from_query(
    gateway: Gateway,
    settings: AppSettings,
    account: Annotated[str | None, Query(max_length=64, description="Default: the default account.")] = None,
) -> AccountRef:
    return resolve_account(gateway, settings, account)


PathAccount = Annotated[AccountRef, Depends(account_from_path)]
QueryAccount = Annotated[AccountRef, Depends(account_from_query)]


async def get_api_keys(request: Request) -> ApiKeyStore:
    return request.app.state.api_keys


async def get_principal(request: Request) -> Principal:
    """The caller the authentication middleware verified (routes declare what it must hold)."""
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    if not isinstance(principal, Principal):
        raise domain.Unauthorized("an API key is required: send Authorization: Bearer <key>")
    return principal


ApiKeys = Annotated[ApiKeyStore, Depends(get_api_keys)]
Caller = Annotated[Principal, Depends(get_principal)]
_OrderKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key and body: the first response is replayed; never a second order. Scoped by API key.",
    ),
]
_PlanKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Names the plan (scoped by API key; the answer's plan_id works too); its orders derive keys "
        "from it.",
    ),
]


async def order_idempotency_key(
    keys: ApiKeys, caller: Caller, account: PathAccount, idempotency_key: _OrderKeyHeader = None
) -> str | None:
    return await idempotency.order_key(keys, caller, account.name, idempotency_key)


async def plan_idempotency_key(
    request: Request, keys: ApiKeys, caller: Caller, idempotency_key: _PlanKeyHeader = None
) -> str | None:
    account = await body_account(request) or request.app.state.settings.default_account
    return await idempotency.plan_key(keys, caller, account, idempotency_key)


OrderIdempotencyKey = Annotated[str | None, Depends(order_idempotency_key)]
PlanIdempotencyKey = Annotated[str | None, Depends(plan_idempotency_key)]
