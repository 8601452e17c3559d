"""An account as it stands: balances straight from the venue, fills from the record; and the start-up
check that no account trades with a key that may withdraw funds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

import ccxt.async_support as ccxt_async

from aiotrade import errors as domain
from aiotrade.config import AccountConfig, VenueConfig
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.account import Balances, Fill, FillPage
from aiotrade.models.orders import Fee
from aiotrade.store.orders import OrderStore, StoredFill

log = logging.getLogger(__name__)

# The venue is asked once per account at start-up; one that cannot answer in time does not hold it up.
RESTRICTIONS_TIMEOUT_S = 5.0


class WithdrawalKeyRefused(domain.StartupRefused):
    """An account's API key may withdraw funds and the account does not allow it: we do not start."""


async def get_balances(gateway: ExchangeGateway, account: str) -> Balances:
    """Free, locked in open orders and total per asset, as the venue reports them now."""
    return await gateway.balances(account)


async def get_fills(
    store: OrderStore,
    account: str,
    *,
    symbol: str | None = None,
    executed_from: datetime | None = None,
    executed_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> FillPage:
    """The account's recorded fills, newest first (kept in step with the venue by the reconciler)."""
    try:
        fills, next_cursor = await store.fill_page(
            account, symbol=symbol, executed_from=executed_from, executed_to=executed_to, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise domain.InvalidInput.param("cursor", str(exc)) from exc
    return FillPage(fills=[_fill(f) for f in fills], next_cursor=next_cursor)


async def refuse_withdrawal_keys(
    gateway: ExchangeGateway, accounts: Mapping[str, AccountConfig], venues: Mapping[str, VenueConfig]
) -> None:
    """Ask each binance-class venue what each account's key may do; raise `WithdrawalKeyRefused` naming
    every account whose key may withdraw unless its ``allow_withdrawals`` is set. A venue that cannot tell
    (no such endpoint, unreachable, too slow) is logged and not held against the account."""
    names = [
        name
        for name, account in accounts.items()
        if account.api_key is not None and _reports_key_restrictions(venues[account.venue])
    ]
    answers = await asyncio.gather(*(_withdrawals_enabled(gateway, name) for name in names))
    refused = []
    for name, may_withdraw in zip(names, answers, strict=True):
        if not may_withdraw:
            continue
        if accounts[name].allow_withdrawals:
            log.warning("account %s: its API key may withdraw funds (allowed by allow_withdrawals)", name)
        else:
            refused.append(name)
    if refused:
        listed = ", ".join(refused)
        raise WithdrawalKeyRefused(
            f"refusing to start: the venue says the API key of account(s) {listed} may withdraw funds, which "
            "a trading backend never needs. Use a key with withdrawals disabled, or set "
            + ", ".join(f"AIOTRADE_ACCOUNTS__{n.upper()}__ALLOW_WITHDRAWALS=true" for n in refused)
            + " to start anyway."
        )


async def _withdrawals_enabled(gateway: ExchangeGateway, account: str) -> bool:
    try:
        async with asyncio.timeout(RESTRICTIONS_TIMEOUT_S):
            return (await gateway.key_restrictions(account)).withdrawals
    except (domain.DomainError, TimeoutError) as error:
        reason = error.detail if isinstance(error, domain.DomainError) else "no answer in time"
        log.warning("account %s: the venue could not tell whether its API key may withdraw (%s)", account, reason)
        return False


def _reports_key_restrictions(venue: VenueConfig) -> bool:
    """Binance and its ccxt descendants serve GET /sapi/v1/account/apiRestrictions."""
    venue_class = getattr(ccxt_async, venue.exchange_class, None)
    return isinstance(venue_class, type) and issubclass(venue_class, ccxt_async.binance)


def _fill(fill: StoredFill) -> Fill:
    return Fill(
        trade_id=fill.trade_id,
        order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        price=fill.price,
        amount=fill.amount,
        cost=fill.cost,
        fee=Fee(cost=fill.fee_cost, currency=fill.fee_currency) if fill.fee_cost is not None else None,
        taker_or_maker=fill.taker_or_maker,
        executed_at=fill.executed_at,
    )
