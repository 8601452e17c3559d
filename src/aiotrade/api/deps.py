"""Dependencies: the shared resources the lifespan opened, and the account a request acts on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from aiotrade.config import OrdersConfig, Settings
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.services.risk.gate import RiskGate
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


async def get_orders_config(request: Request) -> OrdersConfig:
    return request.app.state.settings.orders


Gateway = Annotated[ExchangeGateway, Depends(get_gateway)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Store = Annotated[OrderStore, Depends(get_store)]
RiskStoreDep = Annotated[RiskStore, Depends(get_risk_store)]
PortfolioStoreDep = Annotated[PortfolioStore, Depends(get_portfolio_store)]
Gate = Annotated[RiskGate, Depends(get_gate)]
OrdersConfigDep = Annotated[OrdersConfig, Depends(get_orders_config)]


def resolve_account(gateway: ExchangeGateway, settings: Settings, name: str | None) -> AccountRef:
    """The named account (or the default one); an unknown name is a 404."""
    account = name or settings.default_account
    return AccountRef(account, gateway.venue_of(account))


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
