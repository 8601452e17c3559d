"""How many times each ccxt exception is tried: transient ones up to the bound, refusals once."""

from __future__ import annotations

import time

import ccxt.async_support as ccxt
import pytest

from aiotrade.config import RetryConfig
from aiotrade.exchange import retry
from aiotrade.exchange.limiter import VenueLimiter

POLICY = RetryConfig(attempts=4, initial_delay_s=0.001, max_delay_s=0.002, deadline_s=5)


class Failing:
    def __init__(self, exc: Exception, succeed_after: int | None = None) -> None:
        self.exc = exc
        self.calls = 0
        self.succeed_after = succeed_after

    async def __call__(self) -> str:
        self.calls += 1
        if self.succeed_after is not None and self.calls > self.succeed_after:
            return "ok"
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.RequestTimeout("t"),
        ccxt.ExchangeNotAvailable("n"),
        ccxt.OnMaintenance("m"),
        ccxt.DDoSProtection("d"),
        ccxt.RateLimitExceeded("r"),
        ccxt.NetworkError("x"),
        ccxt.BadResponse("b"),
        ccxt.NullResponse("z"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transient_errors_are_tried_exactly_attempts_times(exc: Exception) -> None:
    call = Failing(exc)
    with pytest.raises(type(exc)):
        await retry.read(call, policy=POLICY)
    assert call.calls == POLICY.attempts


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.ExchangeError("e"),
        ccxt.BadRequest("b"),
        ccxt.BadSymbol("s"),
        ccxt.AuthenticationError("a"),
        ccxt.PermissionDenied("p"),
        ccxt.InsufficientFunds("f"),
        ccxt.InvalidOrder("o"),
        ccxt.OrderNotFound("n"),
        ccxt.InvalidNonce("nonce"),
        ccxt.NotSupported("ns"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_refusals_are_tried_once(exc: Exception) -> None:
    call = Failing(exc)
    with pytest.raises(type(exc)):
        await retry.read(call, policy=POLICY)
    assert call.calls == 1


async def test_success_after_transient_failures_returns_the_value() -> None:
    call = Failing(ccxt.RequestTimeout("t"), succeed_after=2)
    assert await retry.read(call, policy=POLICY) == "ok"
    assert call.calls == 3


async def test_deadline_bounds_the_attempts() -> None:
    policy = RetryConfig(attempts=10, initial_delay_s=0.2, max_delay_s=0.2, deadline_s=0.3)
    call = Failing(ccxt.RequestTimeout("t"))
    started = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        await retry.read(call, policy=policy)
    assert call.calls < 10
    assert time.monotonic() - started < 1.0


async def test_a_retry_after_beyond_the_deadline_stops_at_once() -> None:
    limiter = VenueLimiter(60_000)
    limiter.pause_for(60)
    call = Failing(ccxt.DDoSProtection("429"))
    started = time.monotonic()
    with pytest.raises(ccxt.DDoSProtection):
        await retry.read(call, policy=POLICY, limiter=limiter)
    assert call.calls == 1
    assert time.monotonic() - started < 0.5
