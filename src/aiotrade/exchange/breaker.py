"""A circuit breaker per venue: when the venue stops answering, fail fast instead of queueing behind it.

Promises:
- **Opens** after ``failure_threshold`` consecutive failures (network errors, timeouts, 5xx, garbled answers, as
  the ``is_failure`` predicate decides). Anything else the venue says is an answer and resets the count: an
  explicit refusal (an order look-up that finds nothing) and a 429 (the limiter's business) are not failures.
- **While open**, ``guard()`` raises `CircuitOpen` at once (no I/O, no await), rendered as 503 with
  ``Retry-After``: the seconds until the half-open probe.
- **Half-open**: after ``reset_timeout_s`` exactly one caller goes through as the probe; its success closes the
  breaker, its failure re-opens it for another ``reset_timeout_s``. Everyone else fails fast meanwhile. A probe
  that was cancelled frees the slot for the next caller; one that hangs past ``probe_timeout_s`` is given up.
- **Bypass**: calls that must reach the venue whatever the state (the look-ups that settle an ambiguous order)
  run under ``passthrough()``, which never refuses but feeds the verdict in, so their successes close the breaker.
- ``on_change`` hears every state change (metrics, logs); its failures are logged, never raised.

All state changes are synchronous (no await between a check and its update), so one event loop needs no lock.
The breaker is per process: with several workers each keeps its own view of the venue.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

import ccxt.async_support as ccxt

from aiotrade import errors as domain
from aiotrade.exchange.deadline import NothingSent

log = logging.getLogger(__name__)

T = TypeVar("T")


class CircuitState(IntEnum):
    """The values of the ``aiotrade_circuit_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class CircuitChange:
    venue: str
    old: CircuitState
    new: CircuitState
    reason: str  # "failures", "probe failed", "probe", "success", "probe timed out"


@dataclass(frozen=True, slots=True)
class BreakerStats:
    venue: str
    state: CircuitState
    consecutive_failures: int
    opened: int  # how many times it has opened
    rejected: int  # calls refused without being sent
    retry_after_s: float
    last_failure: str | None  # the exception type of the last failure, never its message


def is_venue_failure(exc: BaseException) -> bool:
    """The proposed classification: does this error say the venue is not answering properly?

    Failures: the NetworkError subtree (unreachable, timeouts, 5xx, maintenance), garbled answers (BadResponse),
    a deadline that ran out (TimeoutError), a connection error that escaped ccxt (OSError), and the domain
    errors these map to. Not failures: the exchange's explicit refusals (the ExchangeError subtree: an order
    look-up that finds nothing is an answer), 429/418 (DDoSProtection, RateLimitExceeded: the limiter's business),
    a refused timestamp (InvalidNonce: our clock), and anything else (our own bugs must not open the venue's
    circuit).
    """
    if isinstance(exc, ccxt.BaseError):
        # DDoSProtection, RateLimitExceeded and InvalidNonce sit under NetworkError in ccxt's tree.
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded | ccxt.InvalidNonce):
            return False
        return isinstance(exc, ccxt.NetworkError | ccxt.BadResponse)
    if isinstance(exc, domain.CircuitOpen | domain.UpstreamRateLimited):
        return False
    if isinstance(exc, domain.UpstreamUnavailable | domain.UpstreamTimeout | domain.UpstreamBadResponse):
        return True
    return isinstance(exc, TimeoutError | OSError)


class CircuitBreaker:
    """One venue's breaker; see the module docstring for its promises."""

    def __init__(
        self,
        venue: str,
        *,
        failure_threshold: int = 3,
        reset_timeout_s: float = 5.0,
        probe_timeout_s: float | None = None,
        is_failure: Callable[[BaseException], bool] = is_venue_failure,
        on_change: Callable[[CircuitChange], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be positive")
        self.venue = venue
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        # A probe that never ends (no deadline around it) must not keep everyone out for ever.
        self.probe_timeout_s = probe_timeout_s if probe_timeout_s is not None else max(reset_timeout_s, 3.0)
        self._is_failure = is_failure
        self._on_change = on_change
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None  # set while a probe is in flight
        self._probe_id = 0
        self._opened = 0
        self._rejected = 0
        self._last_failure: str | None = None

    # ----- what callers use ------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        return self._state

    def retry_after_s(self) -> float:
        """Seconds until a call may be let through (0 when closed, or when a probe may go now)."""
        now = self._clock()
        if self._state is CircuitState.OPEN:
            return max(0.0, self._opened_at + self.reset_timeout_s - now)
        if self._state is CircuitState.HALF_OPEN and self._probe_started is not None:
            return max(0.0, self._probe_started + self.probe_timeout_s - now)
        return 0.0

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Let the body run if the breaker allows it (else raise `CircuitOpen` at once), and record its verdict.

        Put a deadline *inside* the guard, so that a venue that never answers is seen as a timeout here; a
        cancellation from outside (the client went away) gives no verdict.
        """
        probe = self._admit()
        try:
            yield
        except NothingSent:  # our own limiter held it: nothing reached the venue, no verdict
            self._abstain(probe)
            raise
        except Exception as exc:
            self._verdict(self._is_failure(exc), probe, exc)
            raise
        except BaseException:  # cancelled: no verdict, but a probe frees its slot for the next caller
            self._abstain(probe)
            raise
        else:
            self._verdict(False, probe, None)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` under ``guard()``."""
        async with self.guard():
            return await fn()

    @contextlib.asynccontextmanager
    async def passthrough(self) -> AsyncIterator[None]:
        """Never refuse, but record the verdict: for the look-ups that must reach the venue whatever the state."""
        try:
            yield
        except NothingSent:
            raise
        except Exception as exc:
            if self._is_failure(exc):
                self.record_failure(exc)
            else:
                self.record_success()
            raise
        else:
            self.record_success()

    def record_success(self) -> None:
        """The venue answered: the breaker closes, whatever its state."""
        self._failures = 0
        self._probe_started = None
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED, "success")

    def record_failure(self, exc: BaseException | None = None) -> None:
        """The venue failed a call: counts towards opening; re-opens a half-open breaker."""
        self._failures += 1
        if exc is not None:
            self._last_failure = type(exc).__name__
        if self._state is CircuitState.HALF_OPEN:
            self._open("probe failed")
        elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
            self._open("failures")

    def stats(self) -> BreakerStats:
        return BreakerStats(
            venue=self.venue,
            state=self._state,
            consecutive_failures=self._failures,
            opened=self._opened,
            rejected=self._rejected,
            retry_after_s=self.retry_after_s(),
            last_failure=self._last_failure,
        )

    # ----- internals ----------------------------------------------------------------------------

    def _admit(self) -> int | None:
        """None: an ordinary call; an int: this call is the probe with that id. Raises `CircuitOpen`."""
        if self._state is CircuitState.CLOSED:
            return None
        now = self._clock()
        if self._state is CircuitState.OPEN:
            if now < self._opened_at + self.reset_timeout_s:
                self._refuse(self._opened_at + self.reset_timeout_s - now)
            self._set(CircuitState.HALF_OPEN, "probe")
        elif self._probe_started is not None:
            if now < self._probe_started + self.probe_timeout_s:
                self._refuse(self._probe_started + self.probe_timeout_s - now)
            log.warning("circuit probe gave no answer in time: %s", self.venue)
        self._probe_id += 1
        self._probe_started = now
        return self._probe_id

    def _abstain(self, probe: int | None) -> None:
        if probe is not None and probe == self._probe_id:
            self._probe_started = None

    def _verdict(self, failed: bool, probe: int | None, exc: BaseException | None) -> None:
        stale_probe = probe is not None and probe != self._probe_id
        if failed:
            if stale_probe:  # a given-up probe failing late says nothing new about the current one
                self._failures += 1
                return
            self.record_failure(exc)
        else:
            self.record_success()

    def _refuse(self, retry_after_s: float) -> None:
        self._rejected += 1
        raise domain.CircuitOpen(
            f"{self.venue}: not answering; calls are refused for {math.ceil(retry_after_s)} s",
            retry_after_s=retry_after_s,
        )

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._probe_started = None
        self._opened += 1
        self._set(CircuitState.OPEN, reason)

    def _set(self, new: CircuitState, reason: str) -> None:
        old, self._state = self._state, new
        if old is new:
            return
        if self._on_change is not None:
            try:
                self._on_change(CircuitChange(self.venue, old, new, reason))
            except Exception:
                log.exception("circuit breaker on_change hook failed for %s", self.venue)
