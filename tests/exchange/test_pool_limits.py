"""The pool's limiter wiring against the paper exchange over real HTTP: orders are told from reads, the
venue's usage header re-syncs the budget, a Retry-After reaches every replica through Redis, and without
Redis each worker takes its share."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from aiotrade.config import AccountConfig, RateLimitConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange import venues
from aiotrade.exchange.limiter import LocalBuckets, VenueLimiter, order_limits
from aiotrade.exchange.pool import ExchangePool, SharedLimitSettings, request_kind
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange


def settings(url: str, *, budget: float, window_s: float = 60) -> Settings:
    return Settings(
        venues={
            "paper": VenueConfig(
                base_url=url, timeout_ms=3_000, rate_limit=RateLimitConfig(budget=budget, window_s=window_s)
            )
        },
        accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="paper-secret")},
        retry=RetryConfig(attempts=4, initial_delay_s=0.01, max_delay_s=0.02, deadline_s=10),
    )


def ticker(symbol: str = "BTC/USDT"):  # type: ignore[no-untyped-def]
    return lambda c: c.fetch_ticker(symbol)


async def away_from_a_window_end(window_s: float, margin_s: float = 4.0) -> None:
    """Start a little after a venue window begins, so that the test's requests share one window."""
    into = time.time() % window_s
    if into < 1.0 or into > window_s - margin_s:
        await asyncio.sleep((window_s - into) % window_s + 1.0)


@pytest.mark.parametrize(
    ("api", "method", "path", "expected"),
    [
        (["private"], "POST", "order", ("order", 1)),
        (["private"], "POST", "orderList/oco", ("order", 2)),
        (["private"], "POST", "orderList/otoco", ("order", 3)),
        (["private"], "DELETE", "order", ("order", 0)),
        (["private"], "DELETE", "openOrders", ("order", 0)),
        (["private"], "GET", "order", ("read", 0)),
        (["public"], "GET", "ticker/24hr", ("read", 0)),
    ],
)
def test_order_endpoints_are_told_from_reads(api: list[str], method: str, path: str, expected: tuple) -> None:
    assert request_kind("binance", api, method, path) == expected


async def test_orders_and_cancels_leave_as_orders_and_count_against_their_account() -> None:
    async with (
        PaperExchange(PaperConfig(port=0)) as paper,
        ExchangePool(settings(paper.url, budget=100_000), shared=SharedLimitSettings()) as pool,
    ):
        await pool.markets("paper")
        limiter = pool.limiter("paper")
        last = (await pool.read("paper", ticker()))["last"]
        price = float(last) * 0.9
        order = await pool.send_once(
            "paper",
            lambda c: c.create_order("BTC/USDT", "limit", "buy", 0.001, c.price_to_precision("BTC/USDT", price)),
        )
        await pool.send_once("paper", lambda c: c.cancel_order(order["id"], "BTC/USDT"))
        await pool.read_private("paper", lambda c: c.fetch_balance())
        assert limiter.stats().order_requests == 2
        assert limiter._local.taken[("orders_10s", "paper")] == 1  # the cancel places no order
        assert limiter._local.taken[("orders_1d", "paper")] == 1


@pytest.mark.parametrize("shared", [False, True], ids=["local", "shared"])
async def test_weight_another_client_spends_on_the_venue_slows_the_pool_down(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    window_s = 20
    paper_config = PaperConfig(port=0, weight_limit=100_000, weight_window_ms=window_s * 1000)
    limits = SharedLimitSettings(redis_url=request.getfixturevalue("clean_redis_url") if shared else None)
    async with PaperExchange(paper_config) as paper:
        await away_from_a_window_end(window_s)
        async with ExchangePool(settings(paper.url, budget=600, window_s=window_s), shared=limits) as pool:
            limiter = pool.limiter("paper")
            assert limiter.mode == ("shared" if shared else "local")
            await pool.markets("paper")
            await pool.read("paper", ticker())
            await asyncio.sleep(0.1)
            assert limiter.stats().resynced_units == 0  # the venue counted what we sent: nothing to debit
            async with httpx.AsyncClient(base_url=paper.url) as stranger:  # someone else on our IP
                for _ in range(50):
                    await stranger.get("/api/v3/exchangeInfo")  # 20 weight each: 200 of our 600 units
            await pool.read("paper", ticker())  # its answer says the venue counted ~1,000 weight more
            await asyncio.sleep(0.1)
            debited = limiter.stats().resynced_units
            assert 150 < debited < 200, debited
            with pytest.raises(TimeoutError):  # ~180 units to drain at ~29 a second
                await asyncio.wait_for(pool.read("paper", ticker("ETH/USDT")), 1.0)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "control-local"])
async def test_a_retry_after_seen_by_one_replica_pauses_the_others(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    # Two pools with their own Redis connections are two replicas as far as the budget can tell.
    limits = SharedLimitSettings(redis_url=request.getfixturevalue("clean_redis_url") if shared else None)
    async with (
        PaperExchange(PaperConfig(port=0)) as paper,
        ExchangePool(settings(paper.url, budget=100_000), shared=limits) as first,
        ExchangePool(settings(paper.url, budget=100_000), shared=limits) as second,
    ):
        await first.markets("paper")
        await second.markets("paper")
        paper.set_faults(rate_limit_rate=1.0, rate_limit_retry_after_s=2, paths=frozenset({"/api/v3/ticker/24hr"}))
        refused = asyncio.create_task(first.read("paper", ticker()))
        await asyncio.sleep(0.3)
        paper.set_faults()
        started = time.monotonic()
        await second.read("paper", lambda c: c.fetch_order_book("BTC/USDT", 5))  # another endpoint too
        waited = time.monotonic() - started
        assert (await refused)["symbol"] == "BTC/USDT"
    if shared:
        assert waited >= 1.2, waited
    else:
        assert waited < 0.5, waited  # the control: without Redis the other replica never heard of it


async def test_without_redis_each_of_n_workers_takes_one_nth_of_the_budget() -> None:
    config = settings("http://127.0.0.1:9", budget=1_200)
    async with (
        ExchangePool(config, shared=SharedLimitSettings(worker_count=3)) as third,
        ExchangePool(config, shared=SharedLimitSettings(worker_count=1)) as whole,
    ):
        assert third.limiter("paper").mode == "local"
        assert third.limiter("paper").stats().share == 3
        assert third.limiter("paper").rate_per_second == pytest.approx(whole.limiter("paper").rate_per_second / 3)


async def test_worker_count_and_redis_url_come_from_the_environment_until_settings_carry_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIOTRADE_WORKER_COUNT", "4")
    monkeypatch.setenv("AIOTRADE_REDIS_FALLBACK_REPLICAS", "2")
    limits = SharedLimitSettings()
    assert (limits.worker_count, limits.fallback_share, limits.redis_url) == (4, 8, None)


@pytest.mark.parametrize(("burst", "at_once"), [(None, 10), (0.1, 5)], ids=["binance-table", "control-10pct-burst"])
def test_a_burst_of_ten_orders_leaves_at_once_and_no_10s_window_sees_more_than_fifty(
    burst: float | None, at_once: int
) -> None:
    # Binance counts 50 orders per 10 s per account. The table's burst lets ten go together (the control, the
    # old 10% burst, spreads them at the drain rate); a greedy sender never gets more than 50 into any window
    # a venue could see (10 s plus the latency allowance), whatever its alignment.
    table = [row if burst is None else (*row[:4], burst) for row in venues.ORDER_LIMITS["binance"]]
    clock = FakeClock()
    allowance = 0.5
    buckets = LocalBuckets(
        VenueLimiter(100_000, order_limits=order_limits(table)).limits,
        headroom=0.99,
        latency_allowance_s=allowance,
        order_reserve=0.1,
        share=1,
        clock=clock,
        wall_clock=clock,
    )
    together = [buckets.try_take(0.2, 1, "paper", "order") for _ in range(10)]
    assert sum(1 for wait in together if wait == 0) == at_once
    admitted: list[float] = [clock.now] * at_once
    for _ in range(12_000):  # a greedy sender, one try every 5 ms for a minute
        clock.now += 0.005
        if buckets.try_take(0.2, 1, "paper", "order") == 0:
            admitted.append(clock.now)
    end = 0
    for start, first in enumerate(admitted):  # every window of W + s that begins at an admission
        while end < len(admitted) and admitted[end] < first + 10.0 + allowance:
            end += 1
        assert end - start <= 50, (first, end - start)
    assert len(admitted) > 100  # and the sender kept sending


class FakeClock:
    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def test_an_account_the_venue_allows_more_orders_is_configured_by_limit_name() -> None:
    base = settings("http://127.0.0.1:9", budget=1_200)
    raised = Settings(
        venues={
            "paper": VenueConfig(
                base_url="http://127.0.0.1:9",
                rate_limit=RateLimitConfig(budget=1_200, order_limits={"orders_10s": 300}),
            )
        },
        accounts=base.accounts,
    )
    async with (
        ExchangePool(base, shared=SharedLimitSettings()) as default,
        ExchangePool(raised, shared=SharedLimitSettings()) as more,
    ):
        counts = {
            pool: {limit.name: limit.budget for limit in pool.limiter("paper").limits[1:]} for pool in (default, more)
        }
    assert counts[default] == {"orders_10s": 50, "orders_1d": 160_000}  # Binance's published limits
    assert counts[more] == {"orders_10s": 300, "orders_1d": 160_000}
    unknown = Settings(
        venues={
            "paper": VenueConfig(
                base_url="http://127.0.0.1:9", rate_limit=RateLimitConfig(order_limits={"orders_1h": 9})
            )
        },
        accounts=base.accounts,
    )
    with pytest.raises(ValueError, match="orders_1h"):
        async with ExchangePool(unknown, shared=SharedLimitSettings()):
            pass
