"""Portfolio models: allocations, signals and targets, status, rebalance plans, live snapshots."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiotrade.models.common import Dec, Timestamp
from aiotrade.models.orders import Order, OrderSide
from aiotrade.models.risk import CANDLES_BUDGET
from aiotrade.quant.allocation import AllocationMethod  # one enum: the methods the maths offers

Weight = Annotated[Dec, Field(ge=0, le=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Constraints(_Request):
    """Long-only and fully invested by default; weights sum to 1 − cash_buffer."""

    min_weight: Weight = Decimal(0)
    max_weight: Weight = Decimal(1)
    cash_buffer: Annotated[Dec, Field(ge=0, lt=1)] = Decimal(0)

    @model_validator(mode="after")
    def _feasible(self) -> Constraints:
        if self.min_weight > self.max_weight:
            raise ValueError("min_weight must not exceed max_weight")
        return self


class AllocationRequest(_Request):
    account: str | None = Field(default=None, max_length=64, description="With save_as_targets.")
    symbols: list[str] = Field(min_length=1, max_length=100, description=CANDLES_BUDGET)
    method: AllocationMethod = AllocationMethod.EQUAL_WEIGHT
    timeframe: str = Field(default="1d", max_length=8)
    lookback: int = Field(default=180, ge=31, le=5000, description=f"Candles per symbol. {CANDLES_BUDGET}")
    constraints: Constraints = Constraints()
    risk_free_rate: Annotated[Dec, Field(ge=-1, le=1)] = Decimal(0)
    signals: list[Dec] | None = Field(default=None, description="signal_weighted: one score per symbol.")
    shrinkage: bool = Field(default=False, description="Ledoit-Wolf covariance instead of the sample one.")
    save_as_targets: bool = False

    @model_validator(mode="after")
    def _shapes(self) -> AllocationRequest:
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be distinct")
        if self.signals is not None and len(self.signals) != len(self.symbols):
            raise ValueError("signals must have one entry per symbol")
        return self


class Allocation(_Frozen):
    method: AllocationMethod
    weights: dict[str, Dec]
    cash_weight: Dec
    expected_return: Dec
    volatility: Dec
    sharpe: Dec
    risk_contributions: dict[str, Dec]
    observations: int
    conventions: list[str]
    saved_as_targets: bool


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


class Signal(_Request):
    strategy_id: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=3, max_length=64)
    direction: Direction
    strength: Weight = Decimal(1)
    confidence: Weight = Decimal(1)
    timestamp: Timestamp = Field(description="When the strategy emitted it: ISO 8601 with a zone.")
    ttl_s: int = Field(default=3600, ge=1, le=30 * 86400)


class SignalsRequest(_Request):
    account: str | None = Field(default=None, max_length=64)
    signals: list[Signal] = Field(min_length=1, max_length=1000)
    strategy_weights: dict[str, Annotated[Dec, Field(ge=0)]] = Field(
        default_factory=dict, description="Weight of each strategy (default 1)."
    )
    constraints: Constraints = Constraints()


class Targets(_Frozen):
    account: str
    weights: dict[str, Dec]
    cash_weight: Dec
    updated_at: datetime | None
    source: str | None


class SignalsOutcome(_Frozen):
    targets: Targets
    accepted: int
    expired_dropped: int
    duplicates_collapsed: int
    active_signals: int
    scores: dict[str, Dec]
    conventions: list[str]


class AssetStatus(_Frozen):
    asset: str
    symbol: str | None
    quantity: Dec
    value: Dec | None
    weight: Dec | None
    target_weight: Dec
    drift: Dec | None


class PortfolioStatus(_Frozen):
    account: str
    quote: str
    total_value: Dec | None
    cash: Dec
    assets: list[AssetStatus]
    targets_updated_at: datetime | None
    last_rebalance_at: datetime | None
    priced_completely: bool


class BandKind(StrEnum):
    ABSOLUTE = "absolute"  # |weight − target| > band
    RELATIVE = "relative"  # |weight − target| > band × target


class RebalanceRequest(_Request):
    account: str | None = Field(default=None, max_length=64)
    band: Annotated[Dec, Field(ge=0, le=1)] = Decimal("0.02")
    band_kind: BandKind = BandKind.ABSOLUTE
    max_turnover: Annotated[Dec, Field(gt=0, le=2)] | None = Field(
        default=None, description="Cap on Σ|trade notional| ÷ portfolio value."
    )
    fee_rate: Annotated[Dec, Field(ge=0, le=Decimal("0.05"))] = Decimal("0.001")
    execute: bool = Field(default=False, description="Dry run (a plan) unless true.")


class PlannedTrade(_Frozen):
    symbol: str
    side: OrderSide
    amount: Dec
    price: Dec
    notional: Dec
    fee: Dec
    weight_before: Dec
    weight_after: Dec
    target_weight: Dec


class DroppedTrade(_Frozen):
    symbol: str
    reason: str
    notional: Dec | None


class TradeOutcome(_Frozen):
    symbol: str
    side: OrderSide
    status: Literal["placed", "failed", "skipped"]
    order: Order | None = None
    error: str | None = None
    order_may_exist: bool | None = None


class RebalancePlan(_Frozen):
    account: str
    plan_id: str
    quote: str
    total_value: Dec
    trades: list[PlannedTrade]
    dropped: list[DroppedTrade]
    turnover: Dec
    fees: Dec
    executed: bool
    outcomes: list[TradeOutcome] = []
    conventions: list[str]


class MarketDataQuality(_Frozen):
    status: Literal["fresh", "stale", "partial", "unavailable"]
    price_age_s: dict[str, float | None]
    missing: list[str]


class Position(_Frozen):
    asset: str
    symbol: str | None
    quantity: Dec
    free: Dec
    locked: Dec
    price: Dec | None
    market_value: Dec | None
    average_cost: Dec | None
    cost_basis: Dec | None
    unrealized_pnl: Dec | None
    unrealized_pnl_pct: Dec | None


class LiveSnapshot(_Frozen):
    account: str
    quote: str
    total_value: Dec | None
    available_balance: Dec
    positions: list[Position]
    total_unrealized_pnl: Dec | None
    total_unrealized_pnl_pct: Dec | None
    timestamp: datetime
    market_data_quality: MarketDataQuality


class LiveSnapshotResponse(_Frozen):
    status: Literal["success"] = "success"
    snapshot: LiveSnapshot


class Performance(_Frozen):
    account: str
    quote: str
    observations: int
    start: datetime | None
    end: datetime | None
    returns: dict[str, Dec | None]
    volatility: Dec | None
    sharpe: Dec | None
    sortino: Dec | None
    max_drawdown: Dec | None
    calmar: Dec | None
    realized_pnl: Dec
    closed_trades: int
    win_rate: Dec | None
    profit_factor: Dec | None
    conventions: list[str]


class LiveTradeCheck(_Frozen):
    valid: bool
    asset: str
    required: Dec
    free: Dec
    locked: Dec
    fee: Dec
    reason: str | None
