"""Risk over REST: sizing, the pre-trade check, probabilities, portfolio risk, limits and state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aiotrade.api.deps import AppSettings, Compute, Gate, Gateway, PathAccount, RiskStoreDep, resolve_account
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.keys import Scope
from aiotrade.models.risk import (
    PortfolioRiskReport,
    PortfolioRiskRequest,
    PositionSize,
    PositionSizeRequest,
    Probability,
    ProbabilityRequest,
    RiskLimits,
    SetTradingState,
    TradeValidation,
    TradeValidationRequest,
    TradingStateView,
)
from aiotrade.services.risk import analytics, limits, sizing

router = APIRouter(tags=["risk"], responses=PROBLEM_RESPONSES)

Exchange = Annotated[
    str | None, Query(max_length=64, description="Venue for market data; default: the default account's venue.")
]


@router.post(
    "/api/v1/risk/position-size",
    operation_id="calculate_position_size",
    summary="Position size",
    dependencies=[require(Scope.READ, account="body")],
)
async def position_size(gateway: Gateway, settings: AppSettings, body: PositionSizeRequest) -> PositionSize:
    account = resolve_account(gateway, settings, body.account)
    return await sizing.calculate_position_size(gateway, account.name, body)


@router.post(
    "/api/v1/risk/validate-trade",
    operation_id="validate_trade",
    summary="Pre-trade check: every violated rule with its reason code (nothing is sent or written)",
    dependencies=[require(Scope.READ, account="body")],
)
async def validate_trade(
    gateway: Gateway, gate: Gate, settings: AppSettings, body: TradeValidationRequest
) -> TradeValidation:
    account = resolve_account(gateway, settings, body.account)
    return await gate.validate(account.name, body.orders)


@router.post(
    "/api/v1/risk/probability",
    operation_id="calculate_probability",
    summary="Outcome probabilities",
    dependencies=[require(Scope.READ)],
)
async def probability(
    gateway: Gateway, compute: Compute, settings: AppSettings, body: ProbabilityRequest, exchange: Exchange = None
) -> Probability:
    venue = exchange or resolve_account(gateway, settings, None).venue
    return await analytics.calculate_probability(gateway, compute, venue, body)


@router.post(
    "/api/v1/risk/portfolio",
    operation_id="assess_portfolio_risk",
    summary="Portfolio risk",
    dependencies=[require(Scope.READ)],
)
async def portfolio(
    gateway: Gateway, compute: Compute, settings: AppSettings, body: PortfolioRiskRequest, exchange: Exchange = None
) -> PortfolioRiskReport:
    venue = exchange or resolve_account(gateway, settings, None).venue
    return await analytics.assess_portfolio_risk(gateway, compute, venue, body)


@router.get(
    "/api/v1/accounts/{account}/risk-limits",
    operation_id="get_risk_limits",
    summary="Risk limits",
    dependencies=[require(Scope.READ, account="path")],
)
async def get_limits(store: RiskStoreDep, account: PathAccount) -> RiskLimits:
    return await limits.get_risk_limits(store, account.name)


@router.put(
    "/api/v1/accounts/{account}/risk-limits",
    operation_id="set_risk_limits",
    summary="Replace risk limits",
    dependencies=[require(Scope.ADMIN, account="path")],
)
async def set_limits(store: RiskStoreDep, account: PathAccount, body: RiskLimits) -> RiskLimits:
    return await limits.set_risk_limits(store, account.name, body)


@router.get(
    "/api/v1/accounts/{account}/trading-state",
    operation_id="get_trading_state",
    summary="Trading state",
    dependencies=[require(Scope.READ, account="path")],
)
async def get_state(store: RiskStoreDep, account: PathAccount) -> TradingStateView:
    return await limits.get_trading_state(store, account.name)


@router.put(
    "/api/v1/accounts/{account}/trading-state",
    operation_id="set_trading_state",
    summary="Set the trading state (e.g. resume ACTIVE after a halt)",
    dependencies=[require(Scope.ADMIN, account="path")],
)
async def set_state(store: RiskStoreDep, account: PathAccount, body: SetTradingState) -> TradingStateView:
    return await limits.set_trading_state(store, account.name, body.state, body.reason)
