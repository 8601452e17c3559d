"""Risk limits and trading state of an account: read and replaced through here, never around it."""

from __future__ import annotations

from aiotrade.models.risk import RiskLimits, TradingState, TradingStateView
from aiotrade.store.risk import RiskStore


async def get_risk_limits(risk_store: RiskStore, account: str) -> RiskLimits:
    return await risk_store.limits(account)


async def set_risk_limits(risk_store: RiskStore, account: str, limits: RiskLimits) -> RiskLimits:
    """Replace the account's limits; every replica's gate reads them on its next order."""
    return await risk_store.set_limits(account, limits)


async def get_trading_state(risk_store: RiskStore, account: str) -> TradingStateView:
    return await risk_store.trading_state(account)


async def set_trading_state(
    risk_store: RiskStore, account: str, state: TradingState, reason: str | None
) -> TradingStateView:
    """Set ACTIVE, REDUCING or HALTED by hand (e.g. resume after a halt)."""
    return await risk_store.set_trading_state(account, state, reason)
