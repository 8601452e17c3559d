"""The circuit breaker (injected clock), the read deadline, and both through real ccxt against the paper exchange
killed, frozen and brought back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import httpx
import pytest
from fastapi import FastAPI

from aiotrade import errors as domain
from aiotrade.api.problems import install_problem_handlers
from aiotrade.exchange.breaker import CircuitBreaker, CircuitChange, CircuitState, is_venue_failure
from aiotrade.exchange.deadline import Deadline, within
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.paper.urls import ccxt_config

SYMBOL = "BTC/USDT"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Venue:
    """A scripted venue: each call pops the next outcome (an exception to raise, or a value to return)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def answer(self, outcome: object = "ok") -> object:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def breaker(clock: Clock, **options: Any) -> CircuitBreaker:
    return CircuitBreaker("paper", clock=clock, **{"reset_timeout_s": 5.0, **options})


async def fail(b: CircuitBreaker, venue: Venue, exc: BaseException, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(type(exc)):
            await b.call(lambda: venue.answer(exc))


# ----- unit: state machine on an injected clock ---------------------------------------------------------------


async def test_opens_after_three_consecutive_failures_and_not_before() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.RequestTimeout("slow"), times=2)
    assert b.state is CircuitState.CLOSED
    await fail(b, venue, ccxt.ExchangeNotAvailable("502 Bad Gateway"))
    assert b.state is CircuitState.OPEN
    assert b.stats().opened == 1 and b.stats().last_failure == "ExchangeNotAvailable"


async def test_an_answer_between_failures_starts_the_count_again() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("reset"), times=2)
    assert await b.call(lambda: venue.answer("ok")) == "ok"
    await fail(b, venue, ccxt.NetworkError("reset"), times=2)
    await fail(b, venue, ccxt.OrderNotFound("no such order"))  # an answer too
    await fail(b, venue, ccxt.NetworkError("reset"), times=2)
    assert b.state is CircuitState.CLOSED


async def test_an_open_breaker_refuses_at_once_without_calling_the_venue() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(2.0)
    calls = venue.calls
    with pytest.raises(domain.CircuitOpen) as refused:
        await b.call(lambda: venue.answer("ok"))
    assert venue.calls == calls
    assert refused.value.status == 503 and refused.value.slug == "exchange-circuit-open"
    assert refused.value.retry_after_s == pytest.approx(3.0)
    assert b.retry_after_s() == pytest.approx(3.0)
    assert b.stats().rejected == 1


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (ccxt.NetworkError("connection reset"), True),
        (ccxt.RequestTimeout("timed out"), True),
        (ccxt.ExchangeNotAvailable("503 Service Unavailable"), True),
        (ccxt.OnMaintenance("maintenance"), True),
        (ccxt.BadResponse("not JSON"), True),
        (ccxt.NullResponse("empty"), True),
        (ccxt.ExchangeError("refused"), False),
        (ccxt.OrderNotFound("no such order"), False),
        (ccxt.InsufficientFunds("no money"), False),
        (ccxt.AuthenticationError("bad key"), False),
        (ccxt.BadSymbol("no such market"), False),
        (ccxt.RateLimitExceeded("429"), False),
        (ccxt.DDoSProtection("418"), False),
        (ccxt.InvalidNonce("timestamp outside recvWindow"), False),
        (domain.UpstreamTimeout("paper: exchange did not answer in time"), True),
        (domain.UpstreamUnavailable("paper: exchange unavailable"), True),
        (domain.UpstreamBadResponse("paper: unreadable"), True),
        (domain.UpstreamRateLimited("paper: rate limit"), False),
        (domain.CircuitOpen("paper: open"), False),
        (domain.OrderNotFound("paper: no such order"), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("our own bug"), False),
        (KeyError("our own bug"), False),
    ],
)
def test_what_counts_as_the_venue_failing(exc: BaseException, failure: bool) -> None:
    assert is_venue_failure(exc) is failure


async def test_refusals_and_rate_limits_never_open_it() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    answers = (ccxt.OrderNotFound("x"), ccxt.RateLimitExceeded("429"), ccxt.DDoSProtection("418"), ccxt.BadRequest("x"))
    for exc in answers:
        await fail(b, venue, exc, times=3)
    assert b.state is CircuitState.CLOSED


async def test_after_the_reset_timeout_one_probe_goes_and_its_success_closes_the_breaker() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    assert b.retry_after_s() == 0
    assert await b.call(lambda: venue.answer("back")) == "back"
    assert b.state is CircuitState.CLOSED


async def test_callers_during_the_probe_fail_fast_and_only_one_probe_is_sent() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    venue.gate = asyncio.Event()
    calls = venue.calls
    probe = asyncio.create_task(b.call(lambda: venue.answer("back")))
    await asyncio.sleep(0)
    assert b.state is CircuitState.HALF_OPEN
    for _ in range(5):
        with pytest.raises(domain.CircuitOpen):
            await b.call(lambda: venue.answer("never"))
    assert venue.calls == calls + 1
    venue.gate.set()
    assert await probe == "back"
    assert b.state is CircuitState.CLOSED
    assert await b.call(lambda: venue.answer("again")) == "again"


async def test_a_failed_probe_opens_it_for_another_reset_timeout() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    await fail(b, venue, ccxt.RequestTimeout("still down"))
    assert b.state is CircuitState.OPEN
    assert b.retry_after_s() == pytest.approx(5.0)
    with pytest.raises(domain.CircuitOpen):
        await b.call(lambda: venue.answer("ok"))
    assert b.stats().opened == 2


async def test_a_cancelled_probe_lets_the_next_caller_probe() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    venue.gate = asyncio.Event()
    probe = asyncio.create_task(b.call(lambda: venue.answer("back")))
    await asyncio.sleep(0)
    probe.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await probe
    assert b.state is CircuitState.HALF_OPEN
    venue.gate = None
    assert await b.call(lambda: venue.answer("back")) == "back"
    assert b.state is CircuitState.CLOSED


async def test_a_probe_that_hangs_is_given_up_and_its_late_failure_changes_nothing() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock, probe_timeout_s=3.0)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    held = venue.gate = asyncio.Event()
    hung = asyncio.create_task(b.call(lambda: venue.answer(ccxt.RequestTimeout("late"))))
    await asyncio.sleep(0)
    clock.advance(2.9)
    with pytest.raises(domain.CircuitOpen) as refused:
        await b.call(lambda: venue.answer("ok"))
    assert refused.value.retry_after_s == pytest.approx(0.1)
    clock.advance(0.2)
    venue.gate = None
    assert await b.call(lambda: venue.answer("ok")) == "ok"  # a new probe
    assert b.state is CircuitState.CLOSED
    held.set()
    with pytest.raises(ccxt.RequestTimeout):
        await hung
    assert b.state is CircuitState.CLOSED


async def test_passthrough_never_refuses_and_its_answers_close_the_breaker() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    async with b.passthrough():
        await venue.answer("settling look-up")
    assert b.state is CircuitState.CLOSED
    for _ in range(3):
        with pytest.raises(ccxt.NetworkError):
            async with b.passthrough():
                await venue.answer(ccxt.NetworkError("down again"))
    assert b.state is CircuitState.OPEN  # its failures count too
    with pytest.raises(ccxt.OrderNotFound):
        async with b.passthrough():
            await venue.answer(ccxt.OrderNotFound("not there: an answer"))
    assert b.state is CircuitState.CLOSED


async def test_record_success_and_failure_feed_it_from_outside() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure(ccxt.NetworkError("down"))
    assert b.state is CircuitState.OPEN
    b.record_success()
    assert b.state is CircuitState.CLOSED and b.stats().consecutive_failures == 0


async def test_on_change_hears_every_transition_and_a_failing_hook_breaks_nothing() -> None:
    clock, venue = Clock(), Venue()
    heard: list[tuple[CircuitState, CircuitState, str]] = []

    def hook(change: CircuitChange) -> None:
        heard.append((change.old, change.new, change.reason))
        raise RuntimeError("a broken metrics hook")

    b = breaker(clock, on_change=hook)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(5.0)
    await fail(b, venue, ccxt.NetworkError("down"))
    clock.advance(5.0)
    await b.call(lambda: venue.answer("ok"))
    closed, half, opened = CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN
    assert heard == [
        (closed, opened, "failures"),
        (opened, half, "probe"),
        (half, opened, "probe failed"),
        (opened, half, "probe"),
        (half, closed, "success"),
    ]


async def test_circuit_open_is_a_503_problem_with_retry_after() -> None:
    clock, venue = Clock(), Venue()
    b = breaker(clock)
    await fail(b, venue, ccxt.NetworkError("down"), times=3)
    clock.advance(1.5)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/ticker")
    async def ticker() -> object:
        return await b.call(lambda: venue.answer({"last": "1"}))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/ticker")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(math.ceil(3.5))
    assert response.json()["type"] == "urn:aiotrade:problem:exchange-circuit-open"


# ----- the read deadline -----------------------------------------------------------------------------------


async def test_a_spent_deadline_sends_nothing() -> None:
    venue = Venue()
    deadline = Deadline(0.01)
    await asyncio.sleep(0.02)
    with pytest.raises(ccxt.RequestTimeout):
        async with deadline.bound():
            await venue.answer("ok")
    assert venue.calls == 0 and deadline.remaining() == 0


async def test_a_deadline_covers_several_attempts_together() -> None:
    deadline = Deadline(0.3)
    started = time.perf_counter()
    with pytest.raises(ccxt.RequestTimeout):
        for _ in range(10):  # like a retry loop: each attempt gets what is left
            async with deadline.bound():
                await asyncio.sleep(0.1)
    assert 0.28 <= time.perf_counter() - started < 0.45


# ----- through real ccxt against the paper exchange ------------------------------------------------------------


@contextlib.asynccontextmanager
async def binance_like_the_pool(url: str, *, timeout_ms: int = 10_000) -> AsyncIterator[ccxt.binance]:
    """A ccxt binance built the way `ExchangePool` builds one: our session, our timeout, no ccxt retries."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, enable_cleanup_closed=True))
    client = ccxt.binance(
        ccxt_config(
            url,
            enableRateLimit=False,
            timeout=timeout_ms,
            session=session,
            timeout_on_exit=0,
            options={"maxRetriesOnFailure": 0},
        )
    )
    try:
        yield client
    finally:
        await client.close()
        await session.close()


async def guarded(b: CircuitBreaker, call: Callable[[], Awaitable[Any]], deadline_s: float = 3.0) -> Any:
    """One read as the pool should make it: the deadline inside the guard."""
    async with b.guard(), Deadline(deadline_s).bound():
        return await call()


async def test_killed_venue_opens_the_breaker_after_three_failures_then_a_probe_closes_it_when_back() -> None:
    changes: list[CircuitState] = []
    b = CircuitBreaker("paper", reset_timeout_s=0.5, on_change=lambda change: changes.append(change.new))
    async with PaperExchange(PaperConfig(port=0)) as paper, binance_like_the_pool(paper.url) as client:
        await client.load_markets()
        assert (await guarded(b, lambda: client.fetch_ticker(SYMBOL)))["symbol"] == SYMBOL
        await paper.stop()
        for _ in range(3):
            with pytest.raises(ccxt.NetworkError):
                await guarded(b, lambda: client.fetch_ticker(SYMBOL))
        assert b.state is CircuitState.OPEN

        sent = 0

        async def counted() -> Any:
            nonlocal sent
            sent += 1
            return await client.fetch_ticker(SYMBOL)

        for _ in range(5):
            started = time.perf_counter()
            with pytest.raises(domain.CircuitOpen) as refused:
                await guarded(b, counted)
            assert time.perf_counter() - started < 0.1
            assert 0 < refused.value.retry_after_s <= 0.5
        assert sent == 0

        await paper.start()  # the same port, as a restarted venue
        await asyncio.sleep(b.retry_after_s() + 0.01)
        assert (await guarded(b, counted))["symbol"] == SYMBOL
        assert sent == 1 and b.state is CircuitState.CLOSED
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


async def test_frozen_venue_is_cut_off_by_the_deadline_and_counted_until_the_breaker_opens() -> None:
    b = CircuitBreaker("paper", reset_timeout_s=0.5)
    async with PaperExchange(PaperConfig(port=0)) as paper, binance_like_the_pool(paper.url) as client:
        await client.load_markets()
        paper.freeze()  # accepts connections, answers nothing; ccxt alone would wait its 10 s
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(ccxt.RequestTimeout):
                await guarded(b, lambda: client.fetch_ticker(SYMBOL), deadline_s=0.3)
            assert time.perf_counter() - started < 1.0
        assert b.state is CircuitState.OPEN
        started = time.perf_counter()
        with pytest.raises(domain.CircuitOpen):
            await guarded(b, lambda: client.fetch_ticker(SYMBOL), deadline_s=0.3)
        assert time.perf_counter() - started < 0.1
        paper.unfreeze()
        await asyncio.sleep(b.retry_after_s() + 0.01)
        assert (await guarded(b, lambda: client.fetch_ticker(SYMBOL)))["symbol"] == SYMBOL
        assert b.state is CircuitState.CLOSED


async def test_without_the_deadline_a_frozen_venue_holds_the_read_for_ccxts_whole_timeout() -> None:
    # The control: what the deadline saves us from (with a short ccxt timeout, to keep the test quick).
    async with PaperExchange(PaperConfig(port=0)) as paper, binance_like_the_pool(paper.url, timeout_ms=1500) as client:
        await client.load_markets()
        paper.freeze()
        started = time.perf_counter()
        with pytest.raises(ccxt.RequestTimeout):
            await client.fetch_ticker(SYMBOL)
        assert time.perf_counter() - started >= 1.4
        with pytest.raises(ccxt.RequestTimeout):
            await within(lambda: client.fetch_ticker(SYMBOL), 0.2)
        paper.unfreeze()
