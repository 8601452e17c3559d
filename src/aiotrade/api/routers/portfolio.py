"""Portfolio and live portfolio over REST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from aiotrade.api.deps import AppSettings, OrderPolicyDep, Pool, PortfolioStoreDep, RiskStoreDep, Store
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.models.orders import CreateOrderRequest
from aiotrade.models.portfolio import (
    Allocation,
    AllocationRequest,
    LiveSnapshotResponse,
    LiveTradeCheck,
    Performance,
    PortfolioStatus,
    RebalancePlan,
    RebalanceRequest,
    SignalsOutcome,
    SignalsRequest,
    Targets,
)
from aiotrade.services import live, portfolio, risk

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"], responses=PROBLEM_RESPONSES)

AccountQuery = Annotated[str | None, Query(max_length=64, description="Default: the default account.")]
QuoteQuery = Annotated[str, Query(max_length=16, description="Currency to value the portfolio in.")]


@router.post("/allocations", operation_id="calculate_allocations", summary="Allocate weights across symbols")
async def allocations(
    pool: Pool, store: PortfolioStoreDep, settings: AppSettings, body: AllocationRequest
) -> Allocation:
    venue = pool.venue_of(body.account or settings.default_account)
    return await portfolio.calculate_allocations(pool, venue, body, store)


@router.post("/signals", operation_id="process_signals", summary="Strategy signals → target weights")
async def signals(pool: Pool, store: PortfolioStoreDep, settings: AppSettings, body: SignalsRequest) -> SignalsOutcome:
    return await portfolio.process_signals(pool, store, body.account or settings.default_account, body)


@router.get("/targets", operation_id="get_targets", summary="The account's target weights")
async def targets(pool: Pool, store: PortfolioStoreDep, settings: AppSettings, account: AccountQuery = None) -> Targets:
    account = account or settings.default_account
    pool.venue_of(account)
    return await portfolio.get_targets(store, account)


@router.get("/status", operation_id="get_portfolio_status", summary="Weights against targets, drift, cash")
async def status(
    pool: Pool,
    store: PortfolioStoreDep,
    settings: AppSettings,
    account: AccountQuery = None,
    quote: QuoteQuery = "USDT",
) -> PortfolioStatus:
    return await portfolio.get_portfolio_status(pool, store, account or settings.default_account, quote)


@router.post(
    "/rebalance",
    operation_id="rebalance_portfolio",
    summary="Plan a rebalance (dry run by default) or execute it",
)
async def rebalance(
    pool: Pool,
    order_store: Store,
    store: PortfolioStoreDep,
    risk_store: RiskStoreDep,
    policy: OrderPolicyDep,
    settings: AppSettings,
    body: RebalanceRequest,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=200, description="Names the plan; its orders derive keys from it."),
    ] = None,
) -> RebalancePlan:
    async def risk_gate(account: str, order: CreateOrderRequest) -> None:
        await risk.gate(pool, risk_store, account, order)

    return await portfolio.rebalance_portfolio(
        pool,
        order_store,
        store,
        body.account or settings.default_account,
        body,
        rebalance_key=idempotency_key,
        policy=policy,
        pre_trade_check=risk_gate,
    )


@router.get("/live/snapshot", operation_id="get_live_snapshot", summary="Valued snapshot with unrealized PnL")
async def live_snapshot(
    pool: Pool, store: Store, settings: AppSettings, account: AccountQuery = None, quote: QuoteQuery = "USDT"
) -> LiveSnapshotResponse:
    snapshot = await live.get_live_portfolio_snapshot(pool, store, account or settings.default_account, quote)
    return LiveSnapshotResponse(snapshot=snapshot)


@router.get("/live/performance", operation_id="get_portfolio_performance", summary="Performance from equity history")
async def live_performance(
    pool: Pool,
    store: Store,
    risk_store: RiskStoreDep,
    settings: AppSettings,
    account: AccountQuery = None,
    quote: QuoteQuery = "USDT",
) -> Performance:
    account = account or settings.default_account
    pool.venue_of(account)
    return await live.get_portfolio_performance(risk_store, store, account, quote)


@router.post(
    "/live/validate-trade",
    operation_id="validate_trade_live",
    summary="Can the account fund this order now (free balances, locked funds, fees)?",
)
async def live_validate(
    pool: Pool, settings: AppSettings, body: CreateOrderRequest, account: AccountQuery = None
) -> LiveTradeCheck:
    return await live.validate_trade_against_balances(pool, account or settings.default_account, body)
