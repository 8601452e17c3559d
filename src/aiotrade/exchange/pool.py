"""ExchangePool: the only way out to an exchange.

One long-lived `ccxt.async_support` client per (venue, account) plus one public client per venue,
all created when the pool opens. Markets are loaded once per venue (concurrent first callers share
the load) and handed to the venue's account clients with `set_markets`. Every request is throttled
by the venue's limiter before it leaves — one budget for every process when a Redis is configured
(`limiter_redis.SharedVenueLimiter`), else this process's share of it (`limiter.VenueLimiter`) — with
orders and cancels ahead of reads and counted against their account's order limits; the venue's usage
headers re-sync it and a Retry-After pauses it. Reads are retried by `retry.read`; every ccxt error
leaves the pool as a domain error. `close()` closes every client together.

Outages. Each venue has a circuit breaker (`breaker.py`): reads go through its guard (an open circuit refuses
at once, nothing sent: `CircuitOpen`, 503 with Retry-After); order sends and the look-ups that settle an
ambiguous order go through its passthrough (never refused, their outcomes counted; see `_send`). A read gives
the breaker one verdict, its retries included. Each read runs under one `Deadline` (`deadline.py`,
`BreakerConfig.read_deadline_s`), started when its first request leaves the limiter and covering retries and
backoff, inside the guard so that a frozen venue counts as failing.

Clock. Signed requests carry the venue's time: the pool learns each venue's clock offset from its time
endpoint before the first private call, refreshes it every `CLOCK_REFRESH_S`, and on a timestamp refusal
(binance -1021) re-learns it and, if it moved, sends once more — safe for an order too, since the venue
refused it before acting (a refusal the clock does not explain, a request held past its recvWindow, stands).

Metrics (`observability/metrics.py`): every HTTP request to a venue (outcome, latency), limiter waits and
budget used, retries, circuit state.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import ccxt.async_support as ccxt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from aiotrade import errors as domain
from aiotrade.config import AccountConfig, BreakerConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange import retry
from aiotrade.exchange.breaker import CircuitBreaker, CircuitChange, CircuitState
from aiotrade.exchange.deadline import Deadline
from aiotrade.exchange.errors import domain_class, is_clock_refusal, outcome_unknown, redact, to_domain
from aiotrade.exchange.limiter import (
    VenueLimiter,
    order_limits,
    parse_retry_after,
)
from aiotrade.exchange.limiter_redis import SharedVenueLimiter, redis_client
from aiotrade.exchange.venues import (
    COST_CORRECTIONS,
    ORDER_LIMITS,
    REFUSALS_BY_STATUS,
    USAGE_HEADERS,
    ccxt_budget,
    request_kind,
    rewrite_api_urls,
)
from aiotrade.observability.metrics import (
    CIRCUIT_STATE,
    LIMITER_BUDGET_USED,
    LIMITER_WAIT,
    UPSTREAM_RETRIES,
    record_upstream,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Call = Callable[[ccxt.Exchange], Awaitable[T]]

# How often a venue's clock offset is learned again (it drifts slowly; a -1021 re-learns it at once).
CLOCK_REFRESH_S = 300.0
# After a failed attempt to learn it, how long before the next.
CLOCK_RETRY_S = 10.0
# A timestamp refusal is resent only when the offset learned afterwards moved at least this far.
CLOCK_RESEND_MIN_MS = 500
# Whether an open circuit refuses order sends (CircuitOpen, order_may_exist=False) or only reads: see `_send`.
GUARD_SENDS = False


@dataclass(frozen=True, slots=True)
class VenueState:
    name: str
    exchange_class: str
    sandbox: bool
    markets_loaded: bool
    market_count: int


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """What the venue's ccxt class can do, read without I/O."""

    timeframes: frozenset[str]
    ohlcv_page_limit: int
    has: dict[str, bool | str | None]

    def timeframe_ms(self, timeframe: str) -> int:
        return int(ccxt.Exchange.parse_timeframe(timeframe) * 1000)


class SharedLimitSettings(BaseSettings):
    """How the venue budgets are shared between processes: the same three settings as ``Settings``
    (``redis_url``, ``redis_fallback_replicas``, ``worker_count``), read from the environment on their own —
    for callers that have no ``Settings`` at hand. The pool takes them from its ``Settings`` unless given these."""

    model_config = SettingsConfigDict(env_prefix="AIOTRADE_", frozen=True, extra="ignore")

    # AIOTRADE_REDIS_URL: one budget per venue for every process using this Redis. None: per process.
    redis_url: str | None = None
    # AIOTRADE_REDIS_FALLBACK_REPLICAS: replicas (serve instances) sharing each venue; with Redis out of
    # reach, each process takes 1/(replicas × workers) of the budget.
    redis_fallback_replicas: int = Field(default=1, ge=1, le=1_000)
    # AIOTRADE_WORKER_COUNT: worker processes of this serve instance (`serve --workers N` exports it).
    worker_count: int = Field(default=1, ge=1, le=1_000)

    @property
    def fallback_share(self) -> int:
        return self.redis_fallback_replicas * self.worker_count

    @classmethod
    def of(cls, settings: Settings) -> SharedLimitSettings:
        url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
        return cls(
            redis_url=url,
            redis_fallback_replicas=settings.redis_fallback_replicas,
            worker_count=settings.worker_count,
        )


class _Venue:
    """Everything the pool keeps for one venue."""

    def __init__(self, name: str, config: VenueConfig, limiter: VenueLimiter, breaker: CircuitBreaker) -> None:
        self.name = name
        self.config = config
        self.limiter = limiter
        self.breaker = breaker
        self.clock_lock = asyncio.Lock()
        self.clock_due = 0.0  # monotonic time at which the clock offset is to be learned (again)
        self.session: aiohttp.ClientSession | None = None
        self.public: ccxt.Exchange | None = None
        self.accounts: dict[str, ccxt.Exchange] = {}
        self.markets_lock = asyncio.Lock()
        self.heavy_slots = asyncio.Semaphore(config.max_heavy_reads)


class ExchangePool:
    """Owns every exchange client of the process. Open with ``async with`` or ``open()``/``close()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url_overrides: dict[str, str] | None = None,
        redis: Redis | None = None,
        shared: SharedLimitSettings | None = None,
    ) -> None:
        """``redis``: a client the caller owns, for shared budgets; without one, the pool connects to
        ``shared.redis_url`` itself when it is set. ``shared``: None takes them from ``settings``."""
        self._settings = settings
        self._retry: RetryConfig = settings.retry
        self._breaker_config: BreakerConfig = settings.breaker
        self._base_urls = dict(base_url_overrides or {})
        self._shared = shared if shared is not None else SharedLimitSettings.of(settings)
        self._redis = redis
        self._owns_redis = False
        self._venues: dict[str, _Venue] = {}
        self._account_venue: dict[str, str] = {}
        self._opened = False

    # ----- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Create every client (no I/O yet: ccxt connects lazily)."""
        if self._opened:
            return
        if self._redis is None and self._shared.redis_url:
            self._redis = redis_client(self._shared.redis_url)
            self._owns_redis = True
        for name, config in self._settings.venues.items():
            limiter = self._build_limiter(name, config)
            await limiter.start()
            venue = _Venue(name, config, limiter, self._build_breaker(name))
            # One session per venue, sized by us: ccxt's own connector stops at 100 connections.
            venue.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=config.max_connections, enable_cleanup_closed=True)
            )
            venue.public = self._build_client(venue, None, None)
            self._venues[name] = venue
        for account_name, account in self._settings.accounts.items():
            venue = self._venues[account.venue]
            venue.accounts[account_name] = self._build_client(venue, account_name, account)
            self._account_venue[account_name] = account.venue
        self._opened = True

    async def close(self) -> None:
        """Close every client and session together (ccxt's close sleeps ~250 ms each)."""
        clients = [c for v in self._venues.values() for c in (v.public, *v.accounts.values()) if c]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await asyncio.gather(*(v.session.close() for v in self._venues.values() if v.session), return_exceptions=True)
        await asyncio.gather(*(v.limiter.close() for v in self._venues.values()), return_exceptions=True)
        if self._owns_redis and self._redis is not None:
            await self._redis.aclose()
            self._redis, self._owns_redis = None, False
        self._venues.clear()
        self._account_venue.clear()
        self._opened = False

    async def __aenter__(self) -> ExchangePool:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----- what callers use --------------------------------------------------------------------

    def venue_names(self) -> list[str]:
        return list(self._venues)

    def venue_config(self, venue: str) -> VenueConfig:
        return self._venue(venue).config

    def limiter(self, venue: str) -> VenueLimiter:
        return self._venue(venue).limiter

    def breaker(self, venue: str) -> CircuitBreaker:
        return self._venue(venue).breaker

    @property
    def redis(self) -> Redis | None:
        """The Redis the budgets are shared through (None: in-process)."""
        return self._redis

    async def probe(self, venue: str) -> None:
        """One cheap request to the venue (its time), through the breaker: lets a half-open probe go when the
        circuit allows one (readiness checks call it, since a replica out of rotation gets no other traffic)."""
        v = self._venue(venue)
        client = v.public
        assert client is not None
        await self._guarded(v, lambda: client.fetch_time())

    def venue_of(self, account: str) -> str:
        try:
            return self._account_venue[account]
        except KeyError:
            raise domain.UnknownAccount(
                f"unknown account {account!r}; configured: {', '.join(sorted(self._account_venue))}"
            ) from None

    def recv_window_ms(self, account: str) -> int | None:
        """The account client's ``recvWindow`` option: how long the exchange accepts a signed request."""
        v = self._venue(self.venue_of(account))
        value = (v.accounts[account].options or {}).get("recvWindow")
        return int(value) if value is not None else None

    def venue_state(self, venue: str) -> VenueState:
        v = self._venue(venue)
        markets = v.public.markets if v.public is not None else None
        return VenueState(venue, v.config.exchange_class, v.config.sandbox, bool(markets), len(markets or {}))

    def capabilities(self, venue: str) -> VenueCapabilities:
        client = self._venue(venue).public
        assert client is not None
        features = (client.features or {}).get("spot") or {}
        page_limit = (features.get("fetchOHLCV") or {}).get("limit") or 500
        return VenueCapabilities(frozenset(client.timeframes or {}), int(page_limit), dict(client.has))

    async def markets(self, venue: str, *, reload: bool = False) -> dict[str, Any]:
        """The venue's markets, loaded once (concurrent callers share one load), retried as a read."""
        v = self._venue(venue)
        client = v.public
        assert client is not None
        if client.markets and not reload:
            return client.markets
        async with v.markets_lock:
            if client.markets and not reload:
                return client.markets
            # exchangeInfo is large on a real venue: it gets the client's whole timeout, not a read's deadline.
            await self._guarded(
                v, lambda: client.load_markets(reload=reload), deadline_s=max(v.config.timeout_ms / 1000, 1.0)
            )
            for account_client in v.accounts.values():
                account_client.set_markets(client.markets, client.currencies)
        return client.markets

    async def read(self, venue: str, call: Call[T], *, heavy: bool = False) -> T:
        """Run a repeatable call on the venue's public client (markets loaded), retried when safe.

        ``heavy`` marks a call whose answer takes milliseconds of CPU to parse (a page of 1000 candles):
        only a few run at once per venue, so that answers arriving together cannot hold the event loop
        for long.
        """
        v = self._venue(venue)
        await self.markets(venue)
        client = v.public
        assert client is not None
        if not heavy:
            return await self._guarded(v, lambda: call(client))
        async with v.heavy_slots:
            return await self._guarded(v, lambda: call(client))

    async def read_private(self, account: str, call: Call[T], *, settling: bool = False) -> T:
        """Run a repeatable call on an account's client (balances, order look-ups), retried when safe.

        ``settling``: a look-up that settles an ambiguous order: it goes to the venue whatever the state of
        its circuit (its answer still counts towards closing it).
        """
        v, client = await self._account_client(account)
        return await self._signed(v, client, lambda: self._guarded(v, lambda: call(client), settling=settling))

    async def send_once(self, account: str, call: Call[T]) -> T:
        """Run a non-idempotent call once: no blind retry. A failure says whether it may have taken effect
        (``order_may_exist``): only the exchange's explicit refusal means it did not — and an open circuit,
        which sends nothing. A timestamp refusal (-1021) is the one resend: the venue refused before acting."""
        v, client = await self._account_client(account)
        try:
            return await self._signed(v, client, lambda: self._send(v, lambda: call(client)))
        except domain.CircuitOpen as error:
            error.order_may_exist = False
            raise
        except ccxt.BaseError as exc:
            error = self._to_domain(v, exc)
            error.order_may_exist = outcome_unknown(exc)
            raise error from exc
        except (ValueError, TypeError, KeyError) as exc:
            # ccxt choking on an answer it could not parse: the request went out, its effect is unknown.
            log.warning("unreadable answer from %s: %s", v.name, type(exc).__name__)
            raise domain.UpstreamBadResponse(f"{v.name}: unreadable answer", order_may_exist=True) from exc

    # ----- internals ----------------------------------------------------------------------------

    def _venue(self, venue: str) -> _Venue:
        try:
            return self._venues[venue]
        except KeyError:
            raise domain.UnknownVenue(
                f"unknown exchange {venue!r}; configured: {', '.join(sorted(self._venues))}"
            ) from None

    async def _account_client(self, account: str) -> tuple[_Venue, ccxt.Exchange]:
        v = self._venue(self.venue_of(account))
        await self.markets(v.name)
        if time.monotonic() >= v.clock_due:
            await self._learn_clock(v)
        return v, v.accounts[account]

    async def _guarded(
        self,
        v: _Venue,
        call: Callable[[], Awaitable[T]],
        *,
        settling: bool = False,
        deadline_s: float | None = None,
    ) -> T:
        """A read: retried when safe, under one deadline, inside the venue's breaker; ccxt errors mapped.

        The breaker hears one verdict per read (its retries included): a blip that one retry absorbs is not a
        failure, and a read that exhausted its attempts or its deadline is one.
        """
        read = _Read(Deadline(deadline_s or self._breaker_config.read_deadline_s, started=False))
        circuit = v.breaker.passthrough if settling else v.breaker.guard

        async def attempt() -> T:
            token = _READ.set(read)
            try:
                async with read.deadline.bound():
                    return await call()
            finally:
                _READ.reset(token)

        def retried(exc: BaseException) -> None:
            UPSTREAM_RETRIES.labels(v.name, read.endpoint).inc()

        try:
            async with circuit():
                return await retry.read(
                    attempt, policy=self._retry, limiter=v.limiter, deadline=read.deadline, on_retry=retried
                )
        except ccxt.BaseError as exc:
            raise self._to_domain(v, exc) from exc

    async def _send(self, v: _Venue, call: Callable[[], Awaitable[T]]) -> T:
        """A send, once. Its outcome feeds the breaker, but an open circuit does not refuse it here: an order
        reaches a send only after the gate's reads went through the same breaker (so in an outage placements
        are refused there, before anything is recorded), and the placement service reads a refused send
        (``order_may_exist=False``) as the venue's final answer, which an open circuit is not.
        ``GUARD_SENDS`` switches the refusal on once the service tells the two apart."""
        if GUARD_SENDS:
            async with v.breaker.guard():
                return await call()
        async with v.breaker.passthrough():
            return await call()

    async def _signed(self, v: _Venue, client: ccxt.Exchange, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` (a signed request on ``client``). Refused for its timestamp, the clock offset is learned again;
        if it moved, the request goes once more. If it did not, the refusal stands: the request itself was late
        (held in flight past its recvWindow), and what to do about that is the caller's business."""
        signed_with = _time_difference(client)
        try:
            return await call()
        except (ccxt.BaseError, domain.DomainError) as exc:
            cause = exc if isinstance(exc, ccxt.BaseError) else exc.__cause__
            if cause is None or not is_clock_refusal(cause):
                raise
            await self._learn_clock(v, force=True)
            moved = abs(_time_difference(client) - signed_with)
            if moved < CLOCK_RESEND_MIN_MS:
                raise
            log.warning(
                "%s refused a timestamp: its clock is %d ms off what we signed with; sending once more", v.name, moved
            )
        return await call()

    async def _learn_clock(self, v: _Venue, *, force: bool = False) -> None:
        """The venue's clock offset from its time endpoint, onto every account client (ccxt signs with
        ``milliseconds() - options['timeDifference']``). Best effort: a failure keeps the last offset."""
        client = v.public
        if client is None or not v.accounts or not client.has.get("fetchTime"):
            v.clock_due = float("inf")
            return
        requested = time.monotonic()
        async with v.clock_lock:
            if v.clock_due > requested and not force:
                return  # learned while we waited for the lock
            if force and v.clock_due - CLOCK_REFRESH_S > requested:
                return  # someone else re-learned it after our refusal
            try:
                offset = await self._guarded(v, lambda: client.load_time_difference())
            except domain.DomainError as exc:
                log.warning("clock offset of %s not learned: %s", v.name, exc.detail)
                v.clock_due = time.monotonic() + CLOCK_RETRY_S
                return
            for account_client in v.accounts.values():
                account_client.options["timeDifference"] = offset
            v.clock_due = time.monotonic() + CLOCK_REFRESH_S
            log.info("clock offset of %s: %s ms (ours minus the venue's)", v.name, offset)

    def _to_domain(self, v: _Venue, exc: ccxt.BaseError) -> domain.DomainError:
        # A refusal (ExchangeError) is an answer, often expected (an order look-up that finds nothing);
        # a network failure is trouble.
        level = logging.INFO if isinstance(exc, ccxt.ExchangeError) else logging.WARNING
        log.log(level, "exchange call failed: %s %s %s", v.name, type(exc).__name__, redact(str(exc)))
        error = to_domain(exc, venue=v.name)
        if isinstance(error, domain.UpstreamRateLimited):
            error.retry_after_s = max(v.limiter.pause_remaining(), 1.0)
        elif isinstance(error, domain.UpstreamUnavailable) and error.retry_after_s is None:
            # Every 503 says when to come back: when the circuit may let a probe through, else soon.
            error.retry_after_s = max(v.breaker.retry_after_s(), 1.0)
        return error

    def _build_breaker(self, name: str) -> CircuitBreaker:
        config = self._breaker_config
        breaker = CircuitBreaker(
            name,
            failure_threshold=config.failure_threshold,
            reset_timeout_s=config.reset_timeout_s,
            on_change=_circuit_changed,
        )
        CIRCUIT_STATE.labels(name).set(int(CircuitState.CLOSED))
        return breaker

    def _build_limiter(self, name: str, config: VenueConfig) -> VenueLimiter:
        limits = config.rate_limit
        usage = USAGE_HEADERS.get(config.exchange_class)
        usage_header, units_per_header_unit = usage(limits.window_s) if usage else (None, 1.0)
        common: dict[str, Any] = {
            "window_s": limits.window_s,
            "headroom": limits.headroom,
            "burst": limits.burst,
            "latency_allowance_s": limits.latency_allowance_s,
            "order_reserve": limits.order_reserve,
            "order_limits": order_limits(
                _with_overrides(ORDER_LIMITS.get(config.exchange_class, ()), limits.order_limits)
            ),
            "usage_header": usage_header,
            "units_per_header_unit": units_per_header_unit,
        }
        budget = limits.budget or ccxt_budget(config.exchange_class, limits.window_s)
        if self._redis is not None:
            return SharedVenueLimiter(
                self._redis, budget, scope=name, fallback_share=self._shared.fallback_share, **common
            )
        return VenueLimiter(budget, share=self._shared.worker_count, **common)

    def _build_client(self, v: _Venue, account_name: str | None, account: AccountConfig | None) -> ccxt.Exchange:
        config = v.config
        klass = _pooled_class(getattr(ccxt, config.exchange_class))
        params: dict[str, Any] = {
            # Must stay on: ccxt only calls throttle() (ours) when it is.
            "enableRateLimit": True,
            "timeout": config.timeout_ms,
            "session": v.session,
            # ccxt's own retry loop would resend orders blindly and skip the limiter.
            "options": {**config.ccxt_options(), "maxRetriesOnFailure": 0},
        }
        if account is not None:
            for ccxt_key, secret in (
                ("apiKey", account.api_key),
                ("secret", account.secret),
                ("password", account.password),
            ):
                if secret is not None:
                    params[ccxt_key] = secret.get_secret_value()
        client = klass(params)
        # ccxt's status fallback calls 400/403/404 "ExchangeNotAvailable", which a retry policy would
        # take for a transient failure. They are the exchange refusing the request.
        client.httpExceptions = {**client.httpExceptions, **REFUSALS_BY_STATUS}
        client.number = str  # unified structures carry exact strings, never floats
        client.timeout_on_exit = 0  # ccxt's 250 ms sleep on close guards sessions it owns; we own ours
        client.aiotrade_venue = v
        client.aiotrade_account = account_name
        if config.sandbox:
            client.set_sandbox_mode(True)
        base_url = self._base_urls.get(v.name) or (str(config.base_url) if config.base_url else None)
        if base_url:
            client.urls["api"], client.aiotrade_url_map = rewrite_api_urls(client.urls["api"], base_url)
        return client


# (api, method, path) of the request being throttled: ccxt's throttle(cost) is not told which endpoint.
_REQUEST: contextvars.ContextVar[tuple[Any, str, str] | None] = contextvars.ContextVar("aiotrade_request", default=None)


@dataclass(slots=True)
class _Read:
    """The read in progress in this task: its deadline (started by throttle()) and its last endpoint (metrics)."""

    deadline: Deadline
    endpoint: str = "unknown"


_READ: contextvars.ContextVar[_Read | None] = contextvars.ContextVar("aiotrade_read", default=None)


def endpoint_label(request: tuple[Any, str, str] | None) -> str:
    """A small, fixed set of label values: ``GET public/ticker/24hr``, ``POST private/order``."""
    if request is None:
        return "unknown"
    api, method, path = request
    section = api[0] if isinstance(api, list | tuple) and api else api
    return f"{str(method).upper()} {section}/{path}"


def _circuit_changed(change: CircuitChange) -> None:
    CIRCUIT_STATE.labels(change.venue).set(int(change.new))
    level = logging.INFO if change.new is CircuitState.CLOSED else logging.WARNING
    log.log(level, "circuit of %s: %s -> %s (%s)", change.venue, change.old.name, change.new.name, change.reason)


_POOLED_CLASSES: dict[type, type] = {}


def _pooled_class(klass: type[ccxt.Exchange]) -> type[ccxt.Exchange]:
    """A subclass of a ccxt exchange that throttles with our limiter and reads response headers."""
    if klass in _POOLED_CLASSES:
        return _POOLED_CLASSES[klass]

    class Pooled(klass):  # type: ignore[misc, valid-type]
        aiotrade_venue: _Venue
        aiotrade_account: str | None = None
        aiotrade_url_map: tuple[tuple[str, str], ...] = ()

        async def fetch2(self, path, api=None, method="GET", params=None, config=None):  # type: ignore[no-untyped-def]
            # Tell throttle() which endpoint it is throttling (orders count against more limits, and go first).
            api = ["public"] if api is None else api
            token = _REQUEST.set((api, method, path))
            try:
                return await super().fetch2(path, api, method, {} if params is None else params, config or {})
            finally:
                _REQUEST.reset(token)

        async def throttle(self, cost=None):  # type: ignore[no-untyped-def]  # ccxt's signature: request weight
            request = _REQUEST.get()
            priority, orders = request_kind(self.id, *request) if request is not None else ("read", 0)
            venue = self.aiotrade_venue
            started = time.monotonic()
            await venue.limiter.acquire(cost, orders=orders, account=self.aiotrade_account, priority=priority)
            LIMITER_WAIT.labels(venue.name).observe(time.monotonic() - started)
            LIMITER_BUDGET_USED.labels(venue.name).set(venue.limiter.used_ratio())
            read = _READ.get()
            if read is not None:
                read.deadline.leaving()  # the read's clock starts when its request leaves, not while it queues
                read.endpoint = endpoint_label(request)

        async def fetch(self, url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            outcome = "ok"
            try:
                return await super().fetch(url, method, headers, body)
            except ccxt.BaseError as exc:
                outcome = domain_class(exc).slug
                raise
            except asyncio.CancelledError:  # the read's deadline, or the caller gone
                outcome = "cancelled"
                raise
            finally:
                elapsed = time.perf_counter() - started
                record_upstream(self.aiotrade_venue.name, endpoint_label(_REQUEST.get()), outcome, elapsed)

        def on_rest_response(
            self,
            code: int,
            reason: str,
            url: str,
            method: str,
            response_headers: dict[str, str],
            response_body: str,
            request_headers: dict[str, str],
            request_body: str | None,
        ) -> str:
            limiter = self.aiotrade_venue.limiter
            limiter.observe_usage(response_headers, account=self.aiotrade_account)
            retry_after = parse_retry_after(_header(response_headers, "Retry-After"))
            if retry_after is not None and code in (418, 429, 503):
                limiter.pause_for(retry_after)  # in every process, when the budget is shared
            return super().on_rest_response(
                code, reason, url, method, response_headers, response_body, request_headers, request_body
            )

        def calculate_rate_limiter_cost(
            self, api: Any, method: Any, path: Any, params: Any, config: dict | None = None
        ) -> float:
            cost = super().calculate_rate_limiter_cost(api, method, path, params, config or {})
            correct = COST_CORRECTIONS.get(self.id)
            return correct(api, path, params, cost) if correct is not None else cost

        def parse_json(self, http_response: str) -> Any:
            # ccxt swallows broken JSON and hands an empty structure on (an order with no id): a
            # garbled answer must be an error — retried for a read, an unknown outcome for an order.
            if ccxt.Exchange.is_json_encoded_object(http_response):
                try:
                    return self.on_json_response(http_response)
                except ValueError as exc:
                    raise ccxt.BadResponse(f"{self.id} sent an answer that is not valid JSON") from exc
            return super().parse_json(http_response)

        def get_exceptions_by_url(self, url: str, exactOrBroad: str) -> dict:
            for new_prefix, original in self.aiotrade_url_map:
                if url is not None and url.startswith(new_prefix):
                    url = original + url[len(new_prefix) :]
                    break
            return super().get_exceptions_by_url(url, exactOrBroad)

    Pooled.__name__ = Pooled.__qualname__ = f"Pooled{klass.__name__}"
    _POOLED_CLASSES[klass] = Pooled
    return Pooled


def _time_difference(client: ccxt.Exchange) -> int:
    value = (client.options or {}).get("timeDifference")
    return int(value) if isinstance(value, int | float) else 0


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _with_overrides(
    table: tuple[tuple[str, float, float, str | None, float], ...], overrides: dict[str, float]
) -> tuple[tuple[str, float, float, str | None, float], ...]:
    """The venue's order-limit rows with the configured counts (``rate_limit.order_limits``) put in."""
    unknown = set(overrides) - {name for name, *_ in table}
    if unknown:
        raise ValueError(f"rate_limit.order_limits: the venue has no limit named {', '.join(sorted(unknown))}")
    return tuple((name, overrides.get(name, orders), *rest) for name, orders, *rest in table)
