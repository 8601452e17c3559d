"""Can the account fund this order? One rule, behind both validate-trade endpoints and the gate.

A buy needs its notional plus the fee at the account's ``fee_rate`` in the quote currency; a sell needs
its base amount (its fee is taken from the quote it receives). Free balances are net of what open orders
lock; across a batch, each order consumes what the ones before it needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aiotrade.domain.money import money
from aiotrade.models.market import Market


@dataclass(frozen=True, slots=True)
class FundingNeed:
    asset: str
    required: Decimal
    fee: Decimal


def funding_need(market: Market, side: str, amount: Decimal, notional: Decimal, fee_rate: Decimal) -> FundingNeed:
    """What an order of ``amount`` base (worth ``notional`` quote) takes from the free balances."""
    if side == "buy":
        fee = money(notional * fee_rate)
        return FundingNeed(asset=market.quote, required=notional + fee, fee=fee)
    return FundingNeed(asset=market.base, required=amount, fee=Decimal(0))
