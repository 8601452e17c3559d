"""The equity recorder and the loss-limit monitor, side by side.

Every interval, each account's holdings are valued by the one rule (`domain/valuation.py`) and
recorded — one record per account per interval (the store refuses a second), with the running peak
raised in the same transaction. The monitor then compares that equity with the day's first record and
the peak and escalates the trading state (daily loss → REDUCING, drawdown → HALTED, as configured):
the risk gate only reads the state it sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from aiotrade.errors import DomainError
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.risk import RiskLimits
from aiotrade.services.risk.rules import loss_limit_breaches
from aiotrade.store.risk import RiskStore

log = logging.getLogger(__name__)


async def record_and_monitor(
    gateway: ExchangeGateway, risk_store: RiskStore, accounts: Iterable[str], *, interval: int
) -> None:
    """One round of the recorder and the monitor over ``accounts``, for recording interval ``interval``."""
    now = datetime.now(UTC)
    for account in accounts:
        limits = await risk_store.limits(account)
        equity = await account_equity(gateway, account, limits.quote_currency)
        if equity is None:
            continue
        await risk_store.record_equity(account, limits.quote_currency, equity, at=now, bucket=interval)
        await check_loss_limits(risk_store, account, limits, equity, now=now)


async def account_equity(gateway: ExchangeGateway, account: str, quote: str) -> Decimal | None:
    """The account's value in ``quote``, or None (logged) when it cannot be valued completely."""
    try:
        held = await gateway.valued_holdings(account, quote)
    except DomainError as exc:
        log.warning("equity of %s not recorded: %s", account, exc.detail)
        return None
    if held.total is None:  # a partial valuation would record a false drop
        log.warning("equity of %s not recorded: %s cannot be priced", account, ", ".join(held.valuation.missing))
    return held.total


async def check_loss_limits(
    risk_store: RiskStore, account: str, limits: RiskLimits, equity: Decimal, *, now: datetime
) -> None:
    """Escalate the account's trading state for every loss limit ``equity`` has reached."""
    if limits.daily_loss_limit is None and limits.max_drawdown is None:
        return
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    baseline = await risk_store.first_equity_since(account, day_start)
    peak = await risk_store.peak_equity(account, limits.quote_currency)
    for breach in loss_limit_breaches(limits, equity, baseline, peak):
        state = await risk_store.escalate(account, breach.state, breach.message)
        log.warning("%s on %s: %s (trading state %s)", breach.code, account, breach.message, state.state)
