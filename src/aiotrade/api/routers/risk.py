"""Risk over REST: sizing, the pre-trade check, probabilities, portfolio risk, limits and state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from aiotrade.api.deps import AppSettings, Pool, RiskStoreDep
from aiotrade.api.openapi import PROBLEM_RESPONSES
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
from aiotrade.services import risk

router = APIRouter(tags=["risk"], responses=PROBLEM_RESPONSES)

Account = Annotated[str, Path(description="A configured account, e.g. `paper`.", max_length=64)]
Exchange = Annotated[
    str | None, Query(max_length=64, description="Venue for market data; default: the default account's venue.")
]


@router.post("/api/v1/risk/position-size", operation_id="calculate_position_size", summary="Position size")
async def position_size(pool: Pool, settings: AppSettings, body: PositionSizeRequest) -> PositionSize:
    return await risk.calculate_position_size(pool, body.account or settings.default_account, body)


@router.post(
    "/api/v1/risk/validate-trade",
    operation_id="validate_trade",
    summary="Pre-trade check: every violated rule with its reason code (nothing is sent)",
)
async def validate_trade(
    pool: Pool, store: RiskStoreDep, settings: AppSettings, body: TradeValidationRequest
) -> TradeValidation:
    return await risk.validate_trade(pool, store, body.account or settings.default_account, body.orders)


@router.post("/api/v1/risk/probability", operation_id="calculate_probability", summary="Outcome probabilities")
async def probability(
    pool: Pool, settings: AppSettings, body: ProbabilityRequest, exchange: Exchange = None
) -> Probability:
    venue = exchange or pool.venue_of(settings.default_account)
    return await risk.calculate_probability(pool, venue, body)


@router.post("/api/v1/risk/portfolio", operation_id="assess_portfolio_risk", summary="Portfolio risk")
async def portfolio(
    pool: Pool, settings: AppSettings, body: PortfolioRiskRequest, exchange: Exchange = None
) -> PortfolioRiskReport:
    venue = exchange or pool.venue_of(settings.default_account)
    return await risk.assess_portfolio_risk(pool, venue, body)


@router.get("/api/v1/accounts/{account}/risk-limits", operation_id="get_risk_limits", summary="Risk limits")
async def get_limits(pool: Pool, store: RiskStoreDep, account: Account) -> RiskLimits:
    pool.venue_of(account)
    return await store.limits(account)


@router.put("/api/v1/accounts/{account}/risk-limits", operation_id="set_risk_limits", summary="Replace risk limits")
async def set_limits(pool: Pool, store: RiskStoreDep, account: Account, body: RiskLimits) -> RiskLimits:
    pool.venue_of(account)
    return await store.set_limits(account, body)


@router.get("/api/v1/accounts/{account}/trading-state", operation_id="get_trading_state", summary="Trading state")
async def get_state(pool: Pool, store: RiskStoreDep, account: Account) -> TradingStateView:
    pool.venue_of(account)
    return await store.trading_state(account)


@router.put(
    "/api/v1/accounts/{account}/trading-state",
    operation_id="set_trading_state",
    summary="Set the trading state (e.g. resume ACTIVE after a halt)",
)
async def set_state(pool: Pool, store: RiskStoreDep, account: Account, body: SetTradingState) -> TradingStateView:
    pool.venue_of(account)
    return await store.set_trading_state(account, body.state, body.reason)
