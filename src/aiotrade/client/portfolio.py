"""Portfolio: allocations, signals, targets, status, rebalancing, and the live snapshot and performance."""

from __future__ import annotations

from aiotrade.client.core import ClientCore
from aiotrade.client.retrying import KEYED, SAFE, UNSAFE
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

_PORTFOLIO = "/api/v1/portfolio"


class PortfolioApi(ClientCore):
    async def calculate_allocations(self, body: AllocationRequest) -> Allocation:
        # Saving as targets writes the same weights again on a resend: still safe.
        return await self._call("POST", f"{_PORTFOLIO}/allocations", Allocation, kind=SAFE, body=body)

    async def process_signals(self, body: SignalsRequest) -> SignalsOutcome:
        return await self._call("POST", f"{_PORTFOLIO}/signals", SignalsOutcome, kind=UNSAFE, body=body)

    async def get_targets(self, *, account: str | None = None) -> Targets:
        return await self._call("GET", f"{_PORTFOLIO}/targets", Targets, kind=SAFE, query={"account": account})

    async def get_portfolio_status(self, *, quote: str | None = None, account: str | None = None) -> PortfolioStatus:
        query = {"quote": quote, "account": account}
        return await self._call("GET", f"{_PORTFOLIO}/status", PortfolioStatus, kind=SAFE, query=query)

    async def rebalance_portfolio(self, body: RebalanceRequest, *, idempotency_key: str | None = None) -> RebalancePlan:
        """A plan (dry run) or, with ``execute``, its orders. Without a key the server names the plan from its
        inputs, so a resend of the same call executes nothing twice either way."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        return await self._call(
            "POST", f"{_PORTFOLIO}/rebalance", RebalancePlan, kind=KEYED, body=body, headers=headers
        )

    async def get_live_snapshot(self, *, quote: str | None = None, account: str | None = None) -> LiveSnapshotResponse:
        query = {"quote": quote, "account": account}
        return await self._call("GET", f"{_PORTFOLIO}/live/snapshot", LiveSnapshotResponse, kind=SAFE, query=query)

    async def get_portfolio_performance(self, *, quote: str | None = None, account: str | None = None) -> Performance:
        query = {"quote": quote, "account": account}
        return await self._call("GET", f"{_PORTFOLIO}/live/performance", Performance, kind=SAFE, query=query)

    async def validate_trade_live(self, body: CreateOrderRequest, *, account: str | None = None) -> LiveTradeCheck:
        """Can the account fund this order now? (Nothing is sent or written.)"""
        path = f"{_PORTFOLIO}/live/validate-trade"
        return await self._call("POST", path, LiveTradeCheck, kind=SAFE, body=body, query={"account": account})
