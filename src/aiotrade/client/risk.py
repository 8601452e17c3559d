"""Risk: sizing, the pre-trade check, probabilities, portfolio risk, an account's limits and trading state."""

from __future__ import annotations

from aiotrade.client.core import ClientCore, segment
from aiotrade.client.retrying import SAFE
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

_RISK = "/api/v1/risk"


def _account(account: str) -> str:
    return f"/api/v1/accounts/{segment(account)}"


class RiskApi(ClientCore):
    async def calculate_position_size(self, body: PositionSizeRequest) -> PositionSize:
        return await self._call("POST", f"{_RISK}/position-size", PositionSize, kind=SAFE, body=body)

    async def validate_trade(self, body: TradeValidationRequest) -> TradeValidation:
        """Every rule the orders would break (nothing is sent or written)."""
        return await self._call("POST", f"{_RISK}/validate-trade", TradeValidation, kind=SAFE, body=body)

    async def calculate_probability(self, body: ProbabilityRequest, *, exchange: str | None = None) -> Probability:
        path = f"{_RISK}/probability"
        return await self._call("POST", path, Probability, kind=SAFE, body=body, query={"exchange": exchange})

    async def assess_portfolio_risk(
        self, body: PortfolioRiskRequest, *, exchange: str | None = None
    ) -> PortfolioRiskReport:
        path = f"{_RISK}/portfolio"
        return await self._call("POST", path, PortfolioRiskReport, kind=SAFE, body=body, query={"exchange": exchange})

    async def get_risk_limits(self, account: str) -> RiskLimits:
        return await self._call("GET", f"{_account(account)}/risk-limits", RiskLimits, kind=SAFE)

    async def set_risk_limits(self, account: str, body: RiskLimits) -> RiskLimits:
        # A PUT of the whole value: sending it twice leaves what sending it once does.
        return await self._call("PUT", f"{_account(account)}/risk-limits", RiskLimits, kind=SAFE, body=body)

    async def get_trading_state(self, account: str) -> TradingStateView:
        return await self._call("GET", f"{_account(account)}/trading-state", TradingStateView, kind=SAFE)

    async def set_trading_state(self, account: str, body: SetTradingState) -> TradingStateView:
        path = f"{_account(account)}/trading-state"
        return await self._call("PUT", path, TradingStateView, kind=SAFE, body=body)
