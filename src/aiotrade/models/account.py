"""Account models: balances as the venue reports them (free, locked in orders, total)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from aiotrade.models.common import Dec
from aiotrade.models.orders import Fee

ZERO = Decimal(0)


class AssetBalance(BaseModel):
    model_config = ConfigDict(frozen=True)

    free: Dec
    used: Dec = Field(description="Locked in open orders.")
    total: Dec


class Balances(BaseModel):
    """Every asset the venue reports for the account; assets it does not mention hold nothing."""

    model_config = ConfigDict(frozen=True)

    account: str
    venue: str
    assets: dict[str, AssetBalance]
    timestamp: datetime = Field(description="When the balances were read.")
    updated_at: datetime | None = Field(default=None, description="The venue's last change to them, if it says.")

    def free(self, asset: str) -> Decimal:
        held = self.assets.get(asset)
        return held.free if held is not None else ZERO

    def used(self, asset: str) -> Decimal:
        held = self.assets.get(asset)
        return held.used if held is not None else ZERO

    def total(self, asset: str) -> Decimal:
        held = self.assets.get(asset)
        return held.total if held is not None else ZERO

    def holdings(self) -> dict[str, Decimal]:
        """Total per asset, without the zeros."""
        return {asset: held.total for asset, held in self.assets.items() if held.total != 0}


class Fill(BaseModel):
    """One execution of one of the account's orders, as recorded from the exchange."""

    model_config = ConfigDict(frozen=True)

    trade_id: str
    order_id: str | None = Field(description="Our order id.")
    symbol: str
    side: str
    price: Dec
    amount: Dec
    cost: Dec
    fee: Fee | None
    taker_or_maker: str | None
    executed_at: datetime


class FillPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    fills: list[Fill]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
