"""Risk models: limits, trading state, the gate's verdict, sizing, probabilities, portfolio risk.

Floats computed in `quant/` come back as Decimal quantised by `domain/money.py` — ratios,
probabilities and returns to 8 places, half-even — or to the market's precision for amounts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiotrade.compute import DOCUMENTED_MAX_CANDLES, DOCUMENTED_MAX_PATH_STEPS
from aiotrade.models.common import CurrencyCode, Dec
from aiotrade.models.orders import CreateOrderRequest, OrderSide, PositiveDecimal

Fraction = Annotated[Dec, Field(ge=0, le=1)]

# The per-request budgets of heavy maths (settings `compute.max_path_steps`, `compute.max_candles`; README
# "Heavy maths"): over them the answer is a 422 naming both fields, before anything is fetched.
PATH_STEPS_BUDGET = (
    f"Budget: paths × horizon_bars ≤ {DOCUMENTED_MAX_PATH_STEPS:,} by default (both at their maximum); more is a "
    "422 naming both fields."
)
CANDLES_BUDGET = (
    f"Budget: symbols × lookback ≤ {DOCUMENTED_MAX_CANDLES:,} candles by default (both at their maximum); more "
    "is a 422 naming both fields."
)


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce exposure
    HALTED = "HALTED"  # no new orders; cancels still allowed


class RiskLimits(BaseModel):
    """Per-account limits; None switches a limit off. Amounts are in the account's quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quote_currency: CurrencyCode = "USDT"
    max_order_notional: PositiveDecimal | None = None
    max_position_notional: PositiveDecimal | None = Field(default=None, description="Per symbol (base asset).")
    max_gross_exposure: PositiveDecimal | None = Field(default=None, description="Sum of non-quote holdings.")
    max_open_orders: int | None = Field(default=None, ge=0)
    max_orders_per_minute: int | None = Field(default=60, ge=0)
    price_band: Fraction | None = Field(
        default=Decimal("0.05"), description="Limit price at most this far from the last price (fat finger)."
    )
    max_ticker_age_s: float = Field(
        default=30.0, gt=0, le=86_400, allow_inf_nan=False, description="An older ticker is stale: fail closed."
    )
    fee_rate: Fraction = Field(default=Decimal("0.001"), description="Reserved on top of a buy's notional.")
    daily_loss_limit: PositiveDecimal | None = Field(default=None, description="Loss since 00:00 UTC.")
    daily_loss_state: Literal[TradingState.REDUCING, TradingState.HALTED] = TradingState.REDUCING
    max_drawdown: Fraction | None = Field(default=None, description="From the peak of recorded equity.")
    drawdown_state: Literal[TradingState.REDUCING, TradingState.HALTED] = TradingState.HALTED


class TradingStateView(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    state: TradingState
    reason: str | None
    changed_at: datetime | None


class SetTradingState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: TradingState
    reason: str | None = Field(default=None, max_length=500)


class Violation(BaseModel):
    """One rule a trade breaks, with an upper-case reason code."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    order_index: int | None = Field(default=None, description="Which order of a batch, if several.")


class TradeValidationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = Field(default=None, max_length=64, description="Default: the default account.")
    orders: list[CreateOrderRequest] = Field(min_length=1, max_length=50)


class TradeValidation(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    approved: bool
    violations: list[Violation]
    trading_state: TradingState
    checked_at: datetime


class SizingMethod(StrEnum):
    FIXED_FRACTIONAL = "fixed_fractional"
    ATR = "atr"
    VOLATILITY = "volatility"
    KELLY = "kelly"


class PositionSizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = Field(default=None, max_length=64)
    symbol: str = Field(min_length=3, max_length=64)
    side: OrderSide = OrderSide.BUY
    method: SizingMethod = SizingMethod.FIXED_FRACTIONAL
    equity: PositiveDecimal | None = Field(default=None, description="Default: the account's equity.")
    risk_fraction: Annotated[Dec, Field(gt=0, le=Decimal("0.2"))] = Decimal("0.01")
    entry_price: PositiveDecimal | None = Field(default=None, description="Default: the last price.")
    stop_price: PositiveDecimal | None = None
    atr_multiple: Annotated[Dec, Field(gt=0, le=20)] = Decimal(2)
    target_volatility: Annotated[Dec, Field(gt=0, le=5)] | None = None
    win_rate: Annotated[Dec, Field(gt=0, lt=1)] | None = None
    payoff_ratio: PositiveDecimal | None = None
    kelly_multiplier: Annotated[Dec, Field(gt=0, le=1)] = Decimal("0.5")
    timeframe: str = Field(default="1d", max_length=8)
    lookback: int = Field(default=90, ge=30, le=2000)
    fee_rate: Annotated[Dec, Field(ge=0, le=Decimal("0.05"))] = Decimal("0.001")

    @model_validator(mode="after")
    def _method_inputs(self) -> PositionSizeRequest:
        if self.method is SizingMethod.FIXED_FRACTIONAL and self.stop_price is None:
            raise ValueError("stop_price is required for fixed_fractional sizing")
        if self.method is SizingMethod.VOLATILITY and self.target_volatility is None:
            raise ValueError("target_volatility is required for volatility sizing")
        return self


class PositionSize(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    method: SizingMethod
    amount: Dec = Field(description="Rounded down to the lot step, capped by limits and free balance.")
    notional: Dec
    entry_price: Dec
    equity: Dec
    risk_amount: Dec | None
    uncapped_amount: Dec
    caps_applied: list[str]
    conventions: list[str]


class ProbabilityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(min_length=3, max_length=64)
    side: OrderSide = OrderSide.BUY
    entry_price: PositiveDecimal | None = None
    take_profit: PositiveDecimal
    stop_loss: PositiveDecimal
    level: PositiveDecimal | None = Field(default=None, description="Also: P(price above level at horizon).")
    horizon_bars: int = Field(default=30, ge=1, le=1000, description=f"Bars simulated per path. {PATH_STEPS_BUDGET}")
    timeframe: str = Field(default="1d", max_length=8)
    lookback: int = Field(default=365, ge=30, le=2000)
    paths: int = Field(default=10_000, ge=100, le=100_000, description=f"Monte Carlo paths. {PATH_STEPS_BUDGET}")
    seed: int = Field(default=7, ge=0)
    fee_rate: Annotated[Dec, Field(ge=0, le=Decimal("0.05"))] = Decimal("0.001")


class Interval(BaseModel):
    model_config = ConfigDict(frozen=True)

    estimate: Dec
    low: Dec
    high: Dec


class Probability(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    entry_price: Dec
    drift_per_bar: Dec
    volatility_per_bar: Dec
    probability_take_profit_first: Dec
    probability_stop_loss_first: Dec
    expected_value: Dec = Field(description="Per unit of base, in quote, fees included.")
    probability_above_level: Dec | None
    monte_carlo: dict[str, Interval]
    conventions: list[str]


class PortfolioRiskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: list[str] = Field(min_length=1, max_length=100, description=CANDLES_BUDGET)
    weights: list[Dec] | None = Field(default=None, description="Default: equal weights.")
    timeframe: str = Field(default="1d", max_length=8)
    lookback: int = Field(default=365, ge=31, le=5000, description=f"Candles per symbol. {CANDLES_BUDGET}")
    confidence: Annotated[Dec, Field(ge=Decimal("0.5"), lt=1)] = Decimal("0.95")
    horizon_bars: int = Field(default=1, ge=1, le=365)
    risk_free_rate: Annotated[Dec, Field(ge=-1, le=1)] = Decimal(0)
    benchmark: str | None = "BTC/USDT"

    @model_validator(mode="after")
    def _shapes(self) -> PortfolioRiskRequest:
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be distinct")
        if self.weights is not None and len(self.weights) != len(self.symbols):
            raise ValueError("weights must have one entry per symbol")
        return self


class AssetRisk(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    weight: Dec
    volatility: Dec
    var_historical: Dec
    cvar_historical: Dec
    max_drawdown: Dec
    sharpe: Dec
    beta: Dec | None
    volatility_contribution: Dec
    var_contribution: Dec


class PortfolioRiskReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbols: list[str]
    timeframe: str
    observations: int
    start: datetime
    end: datetime
    volatility: Dec
    var_historical: Dec
    cvar_historical: Dec
    var_parametric: Dec
    cvar_parametric: Dec
    var_cornish_fisher: Dec
    max_drawdown: Dec
    sharpe: Dec
    sortino: Dec
    calmar: Dec
    beta: Dec | None
    hhi: Dec
    effective_assets: Dec
    correlation: list[list[Dec]]
    assets: list[AssetRisk]
    conventions: list[str]
