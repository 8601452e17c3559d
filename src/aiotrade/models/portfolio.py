"""Portfolio models: allocations, signals and targets, status, rebalance plans, live snapshots."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiotrade.models.orders import Order, OrderSide

Weight = Annotated[Decimal, Field(ge=0, le=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AllocationMethodName(StrEnum):
    EQUAL_WEIGHT = "equal_weight"
    INVERSE_VOLATILITY = "inverse_volatility"
    MIN_VARIANCE = "min_variance"
    MAX_SHARPE = "max_sharpe"
    RISK_PARITY = "risk_parity"
    HRP = "hrp"
    SIGNAL_WEIGHTED = "signal_weighted"


class Constraints(_Request):
    """Long-only and fully invested by default; weights sum to 1 − cash_buffer."""

    min_weight: Weight = Decimal(0)
    max_weight: Weight = Decimal(1)
    cash_buffer: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal(0)

    @model_validator(mode="after")
    def _feasible(self) -> Constraints:
        if self.min_weight > self.max_weight:
            raise ValueError("min_weight must not exceed max_weight")
        return self


class AllocationRequest(_Request):
    account: str | None = Field(default=None, max_length=64, description="With save_as_targets.")
    symbols: list[str] = Field(min_length=1, max_length=100)
    method: AllocationMethodName = AllocationMethodName.EQUAL_WEIGHT
    timeframe: str = Field(default="1d", max_length=8)
    lookback: int = Field(default=180, ge=31, le=5000)
    constraints: Constraints = Constraints()
    risk_free_rate: Annotated[Decimal, Field(ge=-1, le=1)] = Decimal(0)
    signals: list[Decimal] | None = Field(default=None, description="signal_weighted: one score per symbol.")
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
    method: AllocationMethodName
    weights: dict[str, Decimal]
    cash_weight: Decimal
    expected_return: Decimal
    volatility: Decimal
    sharpe: Decimal
    risk_contributions: dict[str, Decimal]
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
    timestamp: datetime
    ttl_s: int = Field(default=3600, ge=1, le=30 * 86400)


class SignalsRequest(_Request):
    account: str | None = Field(default=None, max_length=64)
    signals: list[Signal] = Field(min_length=1, max_length=1000)
    strategy_weights: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(
        default_factory=dict, description="Weight of each strategy (default 1)."
    )
    constraints: Constraints = Constraints()


class Targets(_Frozen):
    account: str
    weights: dict[str, Decimal]
    cash_weight: Decimal
    updated_at: datetime | None
    source: str | None


class SignalsOutcome(_Frozen):
    targets: Targets
    accepted: int
    expired_dropped: int
    duplicates_collapsed: int
    active_signals: int
    scores: dict[str, Decimal]
    conventions: list[str]


class AssetStatus(_Frozen):
    asset: str
    symbol: str | None
    quantity: Decimal
    value: Decimal | None
    weight: Decimal | None
    target_weight: Decimal
    drift: Decimal | None


class PortfolioStatus(_Frozen):
    account: str
    quote: str
    total_value: Decimal | None
    cash: Decimal
    assets: list[AssetStatus]
    targets_updated_at: datetime | None
    last_rebalance_at: datetime | None
    priced_completely: bool


class BandKind(StrEnum):
    ABSOLUTE = "absolute"  # |weight − target| > band
    RELATIVE = "relative"  # |weight − target| > band × target


class RebalanceRequest(_Request):
    account: str | None = Field(default=None, max_length=64)
    band: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.02")
    band_kind: BandKind = BandKind.ABSOLUTE
    max_turnover: Annotated[Decimal, Field(gt=0, le=2)] | None = Field(
        default=None, description="Cap on Σ|trade notional| ÷ portfolio value."
    )
    fee_rate: Annotated[Decimal, Field(ge=0, le=Decimal("0.05"))] = Decimal("0.001")
    execute: bool = Field(default=False, description="Dry run (a plan) unless true.")


class PlannedTrade(_Frozen):
    symbol: str
    side: OrderSide
    amount: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal
    weight_before: Decimal
    weight_after: Decimal
    target_weight: Decimal


class DroppedTrade(_Frozen):
    symbol: str
    reason: str
    notional: Decimal | None


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
    total_value: Decimal
    trades: list[PlannedTrade]
    dropped: list[DroppedTrade]
    turnover: Decimal
    fees: Decimal
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
    quantity: Decimal
    free: Decimal
    locked: Decimal
    price: Decimal | None
    market_value: Decimal | None
    average_cost: Decimal | None
    cost_basis: Decimal | None
    unrealized_pnl: Decimal | None
    unrealized_pnl_pct: Decimal | None


class LiveSnapshot(_Frozen):
    account: str
    quote: str
    total_value: Decimal | None
    available_balance: Decimal
    positions: list[Position]
    total_unrealized_pnl: Decimal | None
    total_unrealized_pnl_pct: Decimal | None
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
    returns: dict[str, Decimal | None]
    volatility: Decimal | None
    sharpe: Decimal | None
    sortino: Decimal | None
    max_drawdown: Decimal | None
    calmar: Decimal | None
    realized_pnl: Decimal
    closed_trades: int
    win_rate: Decimal | None
    profit_factor: Decimal | None
    conventions: list[str]


class LiveTradeCheck(_Frozen):
    valid: bool
    asset: str
    required: Decimal
    free: Decimal
    locked: Decimal
    fee: Decimal
    reason: str | None
