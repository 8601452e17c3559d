"""Portfolio and live portfolio over REST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aiotrade.api.deps import (
    AppSettings,
    Compute,
    Gate,
    Gateway,
    OrdersConfigDep,
    PlanIdempotencyKey,
    PortfolioStoreDep,
    QueryAccount,
    RiskStoreDep,
    Store,
    resolve_account,
)
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.keys import Scope
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
from aiotrade.services import live, portfolio

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"], responses=PROBLEM_RESPONSES)

QuoteQuery = Annotated[str, Query(max_length=16, description="Currency to value the portfolio in.")]


@router.post(
    "/allocations",
    operation_id="calculate_allocations",
    summary="Allocate weights across symbols (saving them as targets needs `trade`)",
    dependencies=[require(Scope.READ, account="body", raised_by="save_as_targets", raised_to=Scope.TRADE)],
)
async def allocations(
    gateway: Gateway, compute: Compute, store: PortfolioStoreDep, settings: AppSettings, body: AllocationRequest
) -> Allocation:
    account = resolve_account(gateway, settings, body.account)
    return await portfolio.calculate_allocations(gateway, compute, account.venue, body, store)


@router.post(
    "/signals",
    operation_id="process_signals",
    summary="Strategy signals → target weights",
    dependencies=[require(Scope.TRADE, account="body")],
)
async def signals(
    gateway: Gateway, store: PortfolioStoreDep, settings: AppSettings, body: SignalsRequest
) -> SignalsOutcome:
    account = resolve_account(gateway, settings, body.account)
    return await portfolio.process_signals(gateway, store, account.name, body)


@router.get(
    "/targets",
    operation_id="get_targets",
    summary="The account's target weights",
    dependencies=[require(Scope.READ, account="query")],
)
async def targets(store: PortfolioStoreDep, account: QueryAccount) -> Targets:
    return await portfolio.get_targets(store, account.name)


@router.get(
    "/status",
    operation_id="get_portfolio_status",
    summary="Weights against targets, drift, cash",
    dependencies=[require(Scope.READ, account="query")],
)
async def status(
    gateway: Gateway, store: PortfolioStoreDep, account: QueryAccount, quote: QuoteQuery = "USDT"
) -> PortfolioStatus:
    return await portfolio.get_portfolio_status(gateway, store, account.name, quote)


@router.post(
    "/rebalance",
    operation_id="rebalance_portfolio",
    summary="Plan a rebalance (dry run by default, `read`) or execute it (`trade`)",
    dependencies=[require(Scope.READ, account="body", raised_by="execute", raised_to=Scope.TRADE)],
)
async def rebalance(
    gateway: Gateway,
    order_store: Store,
    store: PortfolioStoreDep,
    gate: Gate,
    config: OrdersConfigDep,
    settings: AppSettings,
    body: RebalanceRequest,
    idempotency_key: PlanIdempotencyKey,
) -> RebalancePlan:
    account = resolve_account(gateway, settings, body.account)
    return await portfolio.rebalance_portfolio(
        gateway, order_store, store, gate, config, account.name, body, rebalance_key=idempotency_key
    )


@router.get(
    "/live/snapshot",
    operation_id="get_live_snapshot",
    summary="Valued snapshot with unrealized PnL",
    dependencies=[require(Scope.READ, account="query")],
)
async def live_snapshot(
    gateway: Gateway, store: Store, account: QueryAccount, quote: QuoteQuery = "USDT"
) -> LiveSnapshotResponse:
    snapshot = await live.get_live_portfolio_snapshot(gateway, store, account.name, quote)
    return LiveSnapshotResponse(snapshot=snapshot)


@router.get(
    "/live/performance",
    operation_id="get_portfolio_performance",
    summary="Performance from equity history",
    dependencies=[require(Scope.READ, account="query")],
)
async def live_performance(
    compute: Compute, store: Store, risk_store: RiskStoreDep, account: QueryAccount, quote: QuoteQuery = "USDT"
) -> Performance:
    return await live.get_portfolio_performance(compute, risk_store, store, account.name, quote)


@router.post(
    "/live/validate-trade",
    operation_id="validate_trade_live",
    summary="Can the account fund this order now (free balances, locked funds, fees at the account's fee rate)?",
    dependencies=[require(Scope.READ, account="query")],
)
async def live_validate(
    gateway: Gateway, risk_store: RiskStoreDep, body: CreateOrderRequest, account: QueryAccount
) -> LiveTradeCheck:
    return await live.validate_trade_against_balances(gateway, risk_store, account.name, body)
