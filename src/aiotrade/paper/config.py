"""Configuration of the paper exchange: frozen, validated at construction, readable from the environment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Clock = Callable[[], int]
"""Returns the exchange's current time in milliseconds since the epoch (UTC)."""

ORIGIN_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
"""First instant of the synthetic market: nothing trades before it."""


class FaultConfig(BaseModel):
    """Probabilities of injected faults, drawn once per request; they are exclusive, so their sum is at most 1.

    `paths` scopes every fault to those request paths (e.g. `["/api/v3/ticker/24hr"]`); `None` means every
    exchange path. Admin paths (`/__paper/...`) are never faulted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="HTTP 5xx instead of an answer")
    error_statuses: tuple[int, ...] = (500, 502, 503)
    error_body: Literal["html", "json"] = Field(
        "html",
        description="html: a gateway page (ccxt raises ExchangeNotAvailable); "
        'json: Binance\'s {"code":-1001,...} (ccxt maps the code, see the module notes)',
    )
    rate_limit_rate: float = Field(0.0, ge=0.0, le=1.0, description="HTTP 429 -1003 with Retry-After")
    rate_limit_retry_after_s: int = Field(1, ge=0)
    slow_rate: float = Field(0.0, ge=0.0, le=1.0, description="the answer is held for slow_delay_ms")
    slow_delay_ms: int = Field(15_000, ge=0)
    drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="the connection is closed without an answer")
    # After the request is executed (an order committed): the answer never arrives, or arrives too late,
    # or arrives garbled. These are the faults that make a naive retry place an order twice.
    commit_drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="executed, then the connection is closed")
    commit_slow_rate: float = Field(0.0, ge=0.0, le=1.0, description="executed, answer held for slow_delay_ms")
    malformed_rate: float = Field(0.0, ge=0.0, le=1.0, description="executed, answered with broken JSON")
    paths: frozenset[str] | None = None
    methods: frozenset[str] | None = Field(None, description="only these HTTP methods (e.g. POST); None: all")

    @model_validator(mode="after")
    def _rates_are_exclusive(self) -> FaultConfig:
        total = self._total()
        if total > 1.0 + 1e-12:
            raise ValueError(f"fault rates add up to {total}, more than 1")
        if any(status < 500 or status > 599 for status in self.error_statuses) or not self.error_statuses:
            raise ValueError("error_statuses must be non-empty and all 5xx")
        return self

    @property
    def active(self) -> bool:
        return self._total() > 0

    def _total(self) -> float:
        return (
            self.error_rate
            + self.rate_limit_rate
            + self.slow_rate
            + self.drop_rate
            + self.commit_drop_rate
            + self.commit_slow_rate
            + self.malformed_rate
        )


class PaperAccountConfig(BaseModel):
    """A trading account of the paper exchange: its API key, secret and starting balances."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: str = Field(min_length=1, max_length=128)
    secret: str = Field(min_length=1, max_length=256, repr=False)
    balances: dict[str, Decimal]
    # What GET /sapi/v1/account/apiRestrictions reports; Binance requires an IP restriction to withdraw, so
    # a key with withdrawals enabled is reported IP-restricted too.
    enable_withdrawals: bool = False


def _default_accounts() -> tuple[PaperAccountConfig, ...]:
    # The key and secret of aiotrade's default `paper` account (aiotrade.config.PAPER_API_KEY).
    return (
        PaperAccountConfig(
            api_key="paper-api-key",
            secret="paper-secret",
            balances={
                "USDT": Decimal(100_000),
                "BTC": Decimal(1),
                "ETH": Decimal(10),
                "SOL": Decimal(100),
                "BNB": Decimal(20),
            },
        ),
    )


class PaperConfig(BaseModel):
    """Everything that defines one paper exchange; the same seed gives the same market at the same times."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(7, ge=0, lt=2**32)
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535, description="0: a free port chosen by the OS")
    weight_limit: int = Field(6000, ge=1, description="REQUEST_WEIGHT per UTC minute for /api/*")
    # Binance counts per minute; tests shorten the window to exercise the limiter's bound in seconds.
    weight_window_ms: int = Field(60_000, ge=1_000, le=3_600_000, multiple_of=1_000)
    # After this many 429s for weight within one window, answer 418 (an IP ban) for ban_ms; 0: never ban.
    ban_after_429s: int = Field(0, ge=0)
    ban_ms: int = Field(120_000, ge=1_000, description="Binance's first ban lasts 2 minutes")
    latency_ms: float = Field(0.0, ge=0.0, description="added to every exchange request")
    jitter_ms: float = Field(0.0, ge=0.0, description="uniform extra latency in [0, jitter_ms], seeded")
    faults: FaultConfig = FaultConfig()
    accounts: tuple[PaperAccountConfig, ...] = Field(default_factory=_default_accounts)
    commission_rate: Decimal = Field(Decimal("0.001"), ge=0, le=Decimal("0.1"))
    orders_per_10s: int = Field(50, ge=1, description="Binance's ORDERS limit per account per 10 s")
    origin_ms: int = Field(ORIGIN_MS, description="start of the synthetic history (UTC midnight)")
    extra_assets: int = Field(0, ge=0, le=99, description="synthetic altcoins ALT01/USDT... beyond the dozen")
    # The exchange's clock runs this far ahead of the machine's (negative: behind); settable at run time.
    clock_offset_ms: int = 0
    # Lets /__paper/* answer a non-loopback peer that sends it in X-Paper-Admin-Token.
    admin_token: str | None = Field(None, min_length=1, repr=False)

    @model_validator(mode="after")
    def _origin_is_midnight(self) -> PaperConfig:
        if self.origin_ms % 86_400_000:
            raise ValueError("origin_ms must be a UTC midnight")
        return self


class PaperSettings(PaperConfig, BaseSettings):
    """`PaperConfig` read from `AIOTRADE_PAPER_*` env vars (`AIOTRADE_PAPER_PORT`, `..._CLOCK_OFFSET_MS`,
    `..._ADMIN_TOKEN`, ...); faults nested with `__`, e.g. `AIOTRADE_PAPER_FAULTS__DROP_RATE=0.05`; accounts as
    JSON in `AIOTRADE_PAPER_ACCOUNTS`."""

    model_config = SettingsConfigDict(env_prefix="AIOTRADE_PAPER_", env_nested_delimiter="__", frozen=True)

    def to_config(self) -> PaperConfig:
        """The plain `PaperConfig` (no environment reading attached)."""
        return PaperConfig.model_validate(self.model_dump())
