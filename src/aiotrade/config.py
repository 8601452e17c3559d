"""Settings: venues, accounts, limits, storage.

Read from environment variables prefixed ``AIOTRADE_`` (nested with ``__``, e.g.
``AIOTRADE_VENUES__PAPER__BASE_URL``) and, when ``AIOTRADE_CONFIG_FILE`` names one, a TOML file;
the environment wins over the file. Settings are frozen and validated at construction, so a wrong
setting fails at start-up with a message that names it.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import ccxt.async_support as ccxt_async
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from aiotrade.compute import ComputeSettings

CONFIG_FILE_ENV = "AIOTRADE_CONFIG_FILE"

# Keys the embedded paper exchange seeds with balances; they are test credentials, not secrets.
PAPER_API_KEY = "paper-api-key"
PAPER_SECRET = "paper-secret"

# We trade spot: load_markets() asks only /api/v3/exchangeInfo, not currencies, margins or futures.
DEFAULT_CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        # We ask for all open orders on purpose (the risk gate counts them) and pay its weight.
        "fetchOpenOrders": {"warnWithoutSymbol": False},
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    },
}


class RateLimitConfig(BaseModel):
    """A venue's request budget in ccxt cost units per window (binance: 1 unit = 5 request weight)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None: derived from the ccxt class (rateLimit ms per unit; binance: 1200 per 60 s = 6000 weight).
    budget: float | None = Field(default=None, gt=0)
    window_s: float = Field(default=60.0, gt=0)
    # Share of the budget we let ourselves use; the rest absorbs clock skew and jitter.
    headroom: float = Field(default=0.99, gt=0, le=1)
    # Share of the budget that may leave at once after an idle spell.
    burst: float = Field(default=0.01, gt=0, lt=0.5)
    # How much later one request may reach the exchange than another that left after it.
    latency_allowance_s: float = Field(default=0.5, ge=0, le=10)
    # Share of the weight bucket only orders and cancels may fill: saturating reads cannot starve trading.
    order_reserve: float = Field(default=0.1, ge=0, lt=1)
    # The venue's per-account order-count limits by name (binance: orders_10s = 50, orders_1d = 160000), for
    # an account the venue allows more (e.g. '{"orders_10s": 300}'); a name the venue does not have is an error.
    order_limits: dict[str, float] = Field(default_factory=dict)

    @field_validator("order_limits")
    @classmethod
    def _positive_limits(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, orders in value.items() if not orders > 0]
        if bad:
            raise ValueError(f"order limits must be positive: {', '.join(bad)}")
        return value


class RetryConfig(BaseModel):
    """Retry policy for reads: exponential backoff with full jitter, bounded twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=4, ge=1, le=10)
    initial_delay_s: float = Field(default=0.05, ge=0)
    max_delay_s: float = Field(default=2.0, gt=0)
    # No attempt starts after this; the pool also bounds it by the read deadline (BreakerConfig.read_deadline_s).
    deadline_s: float = Field(default=3.0, gt=0)


class BreakerConfig(BaseModel):
    """The circuit breaker per venue (exchange/breaker.py) and the deadline of one read (exchange/deadline.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Consecutive failures (network errors, timeouts, 5xx) that open the circuit.
    failure_threshold: int = Field(default=3, ge=1, le=3)
    # While open, calls fail at once; after this a half-open probe may close it.
    reset_timeout_s: float = Field(default=2.0, gt=0, le=5.0)
    # A read as a whole (retries and backoff included), counted from the moment its request leaves the limiter.
    read_deadline_s: float = Field(default=3.0, gt=0, le=3.0)


class CacheConfig(BaseModel):
    """Public market data kept for a moment and shared: in-process, and in Redis when AIOTRADE_REDIS_URL is set.
    A TTL of 0 keeps nothing, but identical reads in flight together still join one upstream request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # false: every read goes upstream and nothing joins (benchmarks, debugging).
    enabled: bool = True
    ticker_ttl_s: float = Field(default=0.25, ge=0, le=60)
    orderbook_ttl_s: float = Field(default=0.25, ge=0, le=60)
    trades_ttl_s: float = Field(default=0.5, ge=0, le=60)
    # Candle pages that reach the open candle; pages of closed candles only never change.
    ohlcv_ttl_s: float = Field(default=1.0, ge=0, le=3600)
    closed_ohlcv_ttl_s: float = Field(default=3600.0, ge=0, le=86_400)
    status_ttl_s: float = Field(default=5.0, ge=0, le=3600)
    # How long one process may hold the fetch of a key before another may take it over.
    lock_ttl_s: float = Field(default=3.0, gt=0, le=60)
    # Values kept per process (least recently used go first): candle pages are the big ones.
    max_entries: int = Field(default=2_000, ge=1, le=1_000_000)


def _check_redis_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    from redis.connection import parse_url

    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    try:
        parse_url(value)
    except ValueError as exc:
        raise ValueError(f"not a Redis URL ({exc})") from None
    return value


class VenueConfig(BaseModel):
    """An exchange venue: a ccxt class, optionally pointed at another base URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange_class: str = "binance"
    # Replaces the scheme and host of every ccxt API URL: a testnet, a proxy, the paper exchange.
    base_url: HttpUrl | None = None
    sandbox: bool = False
    timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    max_connections: int = Field(default=512, ge=1, le=10_000)
    # Calls with large answers (candle pages) in flight at once: parsing each costs milliseconds of
    # CPU on the event loop, and many arriving together would stall it.
    max_heavy_reads: int = Field(default=4, ge=1, le=1_000)
    # Markets (filters, new listings) are loaded again this often by every process; 0: only at start-up.
    markets_refresh_s: float = Field(default=3600.0, ge=0)
    rate_limit: RateLimitConfig = RateLimitConfig()
    # ccxt options, on top of our defaults for the class (spot only, see DEFAULT_CCXT_OPTIONS);
    # e.g. {"recvWindow": 5000}.
    options: dict[str, Any] | None = None

    @field_validator("exchange_class")
    @classmethod
    def _known_ccxt_class(cls, value: str) -> str:
        if value not in ccxt_async.exchanges:
            raise ValueError(f"unknown ccxt exchange class {value!r}")
        return value

    def ccxt_options(self) -> dict[str, Any]:
        """Our defaults for the class (spot only), overridden key by key by ``options``."""
        return {**DEFAULT_CCXT_OPTIONS.get(self.exchange_class, {}), **(self.options or {})}


class AccountConfig(BaseModel):
    """Credentials for one account on one venue. Secrets stay SecretStr until the client is built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    venue: str
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    # Start even if the venue says this key may withdraw funds (a trading backend never needs that right).
    allow_withdrawals: bool = False


class OrdersConfig(BaseModel):
    """Exactly-once placement and reconciliation: how hard we try, and how long we wait before deciding
    that an order did not land."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # How long after a send the exchange may still accept it. None: the account client's recvWindow
    # option (binance), else 10 s. A look-up that finds nothing only counts after this (plus clock skew).
    landing_window_ms: int | None = Field(default=None, ge=100, le=60_000)
    clock_skew_ms: int = Field(default=1_000, ge=0, le=30_000)
    max_sends: int = Field(default=3, ge=1, le=10)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    idempotency_lease_s: float = Field(default=60.0, gt=0)
    idempotency_retention_h: float = Field(default=24.0, ge=24.0)

    @property
    def key_lease(self) -> timedelta:
        return timedelta(seconds=self.idempotency_lease_s)

    @property
    def key_retention(self) -> timedelta:
        return timedelta(hours=self.idempotency_retention_h)


class RetentionConfig(BaseModel):
    """How long the store keeps what it does not need forever (purged once per interval by the leader).
    Idempotency keys: `orders.idempotency_retention_h` (at least 24 h). Orders, fills and the equity peak
    are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_days: float = Field(default=365.0, ge=1)
    equity_days: float = Field(default=730.0, ge=1)
    events_days: float = Field(default=30.0, ge=1)
    job_runs_days: float = Field(default=7.0, ge=1)


class JobsConfig(BaseModel):
    """Background jobs run on one replica at a time: the holder of a lease in the shared database."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A dead leader is replaced within 2 × this (in practice 4/3 ×).
    lease_ttl_s: float = Field(default=10.0, ge=1.0, le=300.0)
    purge_interval_s: float = Field(default=3600.0, gt=0)


class TracingConfig(BaseModel):
    """OpenTelemetry spans for HTTP, upstream calls and the database; off by default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    service_name: str = Field(default="aiotrade", min_length=1, max_length=64)
    exporter: Literal["console", "otlp", "memory"] = "console"

    @model_validator(mode="after")
    def _needs_the_extra(self) -> TracingConfig:
        # The OpenTelemetry SDK and instrumentations are the `tracing` extra; a plain install (the image)
        # has only what FastAPI pulls in. Said at start-up, not as an ImportError on the first request.
        if self.enabled:
            try:
                for module in ("opentelemetry.sdk.trace", "opentelemetry.instrumentation.fastapi"):
                    importlib.import_module(module)
            except ImportError as exc:
                raise ValueError(
                    f"tracing is enabled but OpenTelemetry is not installed ({exc.name}): "
                    "pip install 'aiotrade[tracing]'"
                ) from exc
        return self


class PaperEmbedConfig(BaseModel):
    """The paper exchange started inside `serve` when the `paper` venue has no base URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    latency_ms: float = Field(default=0, ge=0)


# Our API keys: `at_` + secrets.token_urlsafe(32) (43 characters); log redaction matches at_[A-Za-z0-9_-]{40,}.
API_KEY_PATTERN = re.compile(r"at_[A-Za-z0-9_-]{40,128}")
ALL_ACCOUNTS = "*"  # an API key's account list: every configured account
Scope = Literal["read", "trade", "admin"]


class AuthConfig(BaseModel):
    """API keys (stored as SHA-256 digests in the database, shared by every replica) and how they are checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A verified key is trusted this long without asking the database again: a revoked key stops working on
    # every replica within it. A key never seen before is looked up at once.
    cache_ttl_s: float = Field(default=5.0, ge=0, le=5.0)
    # Requests per second for keys made without --rate-limit (0: unlimited).
    default_rate_limit: float = Field(default=20.0, ge=0, le=100_000)
    # Inserted at start-up on every replica (idempotently, by digest); replaces an older bootstrap key.
    # Docker secrets: AIOTRADE_AUTH__BOOTSTRAP_KEY_FILE names a file holding it (see EnvWithFiles).
    bootstrap_key: SecretStr | None = None
    bootstrap_scopes: list[Scope] = Field(default_factory=lambda: ["read", "trade", "admin"], min_length=1)
    bootstrap_accounts: list[str] = Field(default_factory=lambda: [ALL_ACCOUNTS], min_length=1)
    bootstrap_rate_limit: float = Field(default=0.0, ge=0, le=100_000)
    # `serve` on a loopback address makes a local key with every scope in data_dir/dev-api-key (mode 0600).
    dev_key: bool = True
    # WebSocket tickets (browsers cannot set headers on a handshake): single use, this short-lived.
    ticket_ttl_s: float = Field(default=30.0, gt=0, le=30.0)

    @field_validator("bootstrap_key")
    @classmethod
    def _one_of_ours(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not API_KEY_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("not an aiotrade API key (at_ followed by 40+ URL-safe characters)")
        return value


class HttpConfig(BaseModel):
    """Which Host headers and browser origins the API answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None: localhost, 127.0.0.1 and [::1] (any port) and the configured `host`. "*" allows any Host;
    # ".example.com" allows example.com and its subdomains. Anything else gets 400 (DNS rebinding).
    allowed_hosts: list[str] | None = None
    # Browser origins allowed to call the API (CORS, off when empty) and to open the live stream; the
    # stream always accepts its own origin.
    cors_origins: list[str] = Field(default_factory=list)


def _default_venues() -> dict[str, VenueConfig]:
    return {"paper": VenueConfig(exchange_class="binance")}


def _default_accounts() -> dict[str, AccountConfig]:
    return {"paper": AccountConfig(venue="paper", api_key=SecretStr(PAPER_API_KEY), secret=SecretStr(PAPER_SECRET))}


class EnvWithFiles(EnvSettingsSource):
    """The environment, where any ``AIOTRADE_<NAME>_FILE`` stands for ``AIOTRADE_<NAME>`` with the file's
    contents (trailing newline removed): secrets from Docker secrets or a mounted file, never an env value.
    A variable set both ways is an error, and so is a file that cannot be read."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        variables = dict(super()._load_env_vars())
        prefix = (self.env_prefix or "").lower()
        own = CONFIG_FILE_ENV.lower()
        indirect = [n for n in variables if n.startswith(prefix) and n.endswith("_file") and n != own]
        for name in indirect:
            target, path = name.removesuffix("_file"), variables.pop(name)
            if target in variables:
                raise ValueError(f"{target.upper()} and {name.upper()} are both set: give one")
            try:
                variables[target] = Path(path or "").read_text().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{name.upper()}: cannot read {path!r} ({exc.strerror})") from None
        return variables


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIOTRADE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    venues: dict[str, VenueConfig] = Field(default_factory=_default_venues)
    accounts: dict[str, AccountConfig] = Field(default_factory=_default_accounts)
    default_account: str = "paper"
    retry: RetryConfig = RetryConfig()
    orders: OrdersConfig = OrdersConfig()
    # None: SQLite in data_dir. Production: postgresql+asyncpg://user:password@host/db
    database_url: SecretStr | None = None
    paper: PaperEmbedConfig = PaperEmbedConfig()
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # console: readable lines; json: one JSON object per line (for log shippers). Always on standard error.
    log_format: Literal["console", "json"] = "console"
    # One line per request (method, route template, status, duration, request id).
    access_log: bool = True
    # On SIGTERM/SIGINT: how long requests in flight may take to finish before they are cancelled.
    shutdown_grace_s: float = Field(default=30.0, gt=0, le=600)
    # Keep a sane X-Request-ID from the caller (a gateway's); otherwise every request gets a fresh one.
    trust_request_id: bool = True
    tracing: TracingConfig = TracingConfig()
    # The live stream recomputes a subscribed account's snapshot at most this often.
    live_interval_s: float = Field(default=1.0, gt=0)
    # How often each account's equity is recorded (performance, daily-loss and drawdown limits).
    equity_interval_s: float = Field(default=60.0, gt=0)
    jobs: JobsConfig = JobsConfig()
    # Heavy maths in worker processes: how many, jobs at once, the wait queue, per-request budgets
    # (aiotrade.compute; e.g. AIOTRADE_COMPUTE__QUEUE_SIZE=32).
    compute: ComputeSettings = ComputeSettings()
    retention: RetentionConfig = RetentionConfig()
    # Requests above this many bytes are refused before they are read further.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    auth: AuthConfig = AuthConfig()
    http: HttpConfig = HttpConfig()
    # The database password apart from the URL, put into it (Docker secrets: AIOTRADE_DATABASE_PASSWORD_FILE).
    database_password: SecretStr | None = None
    # One venue budget, one market-data cache and the live stream's relay for every process using this Redis.
    # None: in-process only (each process keeps its share of every budget).
    # A SecretStr: the URL may carry a password (redis://:password@host:6379/0).
    redis_url: SecretStr | None = None
    # Replicas (serve instances) that may share each venue: with Redis out of reach, each process takes
    # 1/(replicas × workers) of the budget.
    redis_fallback_replicas: int = Field(default=1, ge=1, le=1_000)
    # Worker processes of this serve instance (`serve --workers N` sets it for its workers).
    worker_count: int = Field(default=1, ge=1, le=1_000)
    cache: CacheConfig = CacheConfig()
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        return _check_redis_url(value) if isinstance(value, str) or value is None else value

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        if not self.venues:
            raise ValueError("venues: at least one venue must be configured")
        for name, account in self.accounts.items():
            if account.venue not in self.venues:
                raise ValueError(
                    f"accounts.{name}.venue: {account.venue!r} is not a configured venue "
                    f"(configured: {', '.join(sorted(self.venues))})"
                )
            if (account.api_key is None) != (account.secret is None):
                raise ValueError(f"accounts.{name}: api_key and secret must be given together")
        if self.accounts and self.default_account not in self.accounts:
            raise ValueError(f"default_account: {self.default_account!r} is not a configured account")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, EnvWithFiles(settings_cls)]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}: no such file {config_file!r}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def effective_database_url(self) -> str:
        if self.database_url is not None:
            if self.database_password is None:
                return self.database_url.get_secret_value()
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url.get_secret_value()).set(password=self.database_password.get_secret_value())
            return url.render_as_string(hide_password=False)
        return f"sqlite+aiosqlite:///{self.data_dir / 'aiotrade.db'}"

    def embedded_paper_venues(self) -> list[str]:
        """Venues that the embedded paper exchange serves: `paper` when it has no base URL."""
        venue = self.venues.get("paper")
        return ["paper"] if venue is not None and venue.base_url is None else []
