"""Dependencies: the shared resources the lifespan opened, reached from a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aiotrade.config import Settings
from aiotrade.exchange.pool import ExchangePool
from aiotrade.services.orders import OrderPolicy
from aiotrade.store.orders import OrderStore
from aiotrade.store.portfolio import PortfolioStore
from aiotrade.store.risk import RiskStore


async def get_pool(request: Request) -> ExchangePool:
    return request.app.state.pool


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> OrderStore:
    return request.app.state.store


async def get_risk_store(request: Request) -> RiskStore:
    return request.app.state.risk_store


async def get_portfolio_store(request: Request) -> PortfolioStore:
    return request.app.state.portfolio_store


async def get_order_policy(request: Request) -> OrderPolicy:
    return request.app.state.order_policy


Pool = Annotated[ExchangePool, Depends(get_pool)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Store = Annotated[OrderStore, Depends(get_store)]
RiskStoreDep = Annotated[RiskStore, Depends(get_risk_store)]
PortfolioStoreDep = Annotated[PortfolioStore, Depends(get_portfolio_store)]
OrderPolicyDep = Annotated[OrderPolicy, Depends(get_order_policy)]
