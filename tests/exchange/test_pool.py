"""The pool against the paper exchange: the limiter keeps the exchange's window, retries are counted,
markets load once, secrets stay out of errors, and shutdown leaves nothing open."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest

from aiotrade import errors as domain
from aiotrade.config import AccountConfig, RateLimitConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange.pool import ExchangePool
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"]


def settings(url: str, *, budget: float, window_s: float = 60, attempts: int = 4) -> Settings:
    return Settings(
        venues={
            "paper": VenueConfig(
                base_url=url, timeout_ms=2_000, rate_limit=RateLimitConfig(budget=budget, window_s=window_s)
            )
        },
        accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="paper-secret")},
        retry=RetryConfig(attempts=attempts, initial_delay_s=0.01, max_delay_s=0.02, deadline_s=10),
    )


async def burst(pool: ExchangePool, count: int) -> list[object]:
    return await asyncio.gather(
        *(pool.read("paper", lambda c, s=symbol: c.fetch_ticker(s)) for symbol in (SYMBOLS * count)[:count]),
        return_exceptions=True,
    )


async def test_the_limiter_never_lets_the_exchange_answer_429() -> None:
    # A 2 s window of 40 weight (20 tickers); the burst needs 40 tickers, so it must span windows.
    paper_config = PaperConfig(port=0, weight_limit=40, weight_window_ms=2_000)
    async with PaperExchange(paper_config) as paper:
        async with ExchangePool(settings(paper.url, budget=8, window_s=2)) as pool:
            await pool.markets("paper")  # exchangeInfo is half this tiny budget: let its window pass
            await asyncio.sleep(2.6)
            paper.stats.reset()
            results = await burst(pool, 40)
        assert all(isinstance(r, dict) for r in results), [r for r in results if not isinstance(r, dict)][:3]
        assert paper.stats.rate_limited == 0
        assert max(used for _, used in paper.stats.weight) <= 40


async def test_without_the_limiter_the_same_burst_is_refused() -> None:
    # The same burst with a budget far above the exchange's: the exchange answers 429 (the test can fail).
    paper_config = PaperConfig(port=0, weight_limit=40, weight_window_ms=2_000)
    async with PaperExchange(paper_config) as paper:
        async with ExchangePool(settings(paper.url, budget=100_000, window_s=2, attempts=1)) as pool:
            await pool.markets("paper")
            results = await burst(pool, 60)
        assert paper.stats.rate_limited > 0
        assert any(isinstance(r, domain.UpstreamRateLimited) for r in results)


async def test_retry_after_pauses_the_whole_venue_and_the_read_succeeds() -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper:
        async with ExchangePool(settings(paper.url, budget=100_000)) as pool:
            await pool.markets("paper")
            paper.set_faults(rate_limit_rate=1.0, rate_limit_retry_after_s=1, paths=frozenset({"/api/v3/ticker/24hr"}))
            task = asyncio.create_task(pool.read("paper", lambda c: c.fetch_ticker("BTC/USDT")))
            await asyncio.sleep(0.3)
            assert pool.limiter("paper").pause_remaining() > 0
            paper.set_faults()
            ticker = await task
        assert ticker["symbol"] == "BTC/USDT"


@pytest.mark.parametrize(
    ("faults", "expected_calls", "error"),
    [
        ({"error_rate": 1.0}, 4, domain.UpstreamUnavailable),
        ({"slow_rate": 1.0, "slow_delay_ms": 3_000}, 4, domain.UpstreamTimeout),
    ],
)
async def test_reads_are_retried_exactly_the_configured_number_of_times(
    faults: dict, expected_calls: int, error: type
) -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper, ExchangePool(settings(paper.url, budget=100_000)) as pool:
        pool._venue("paper").public.timeout = 300
        await pool.markets("paper")
        paper.set_faults(paths=frozenset({"/api/v3/ticker/24hr"}), **faults)
        before = paper.stats.requests.get("/api/v3/ticker/24hr", 0)
        with pytest.raises(error):
            await pool.read("paper", lambda c: c.fetch_ticker("BTC/USDT"))
        assert paper.stats.requests["/api/v3/ticker/24hr"] - before == expected_calls


async def test_a_refusal_is_not_retried() -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper, ExchangePool(settings(paper.url, budget=100_000)) as pool:
        await pool.markets("paper")
        before = paper.stats.requests.get("/api/v3/klines", 0)
        with pytest.raises(domain.UpstreamRejected):  # -1120 invalid interval is a 400 refusal
            await pool.read("paper", lambda c: c.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"}))
        assert paper.stats.requests["/api/v3/klines"] - before == 1


async def test_markets_load_once_for_concurrent_callers_and_reach_account_clients() -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper, ExchangePool(settings(paper.url, budget=100_000)) as pool:
        loaded = await asyncio.gather(*(pool.markets("paper") for _ in range(20)))
        assert all(m is loaded[0] for m in loaded)
        assert paper.stats.requests["/api/v3/exchangeInfo"] == 1
        balance = await pool.read_private("paper", lambda c: c.fetch_balance())
        assert balance["USDT"]["free"] is not None
        assert paper.stats.requests["/api/v3/exchangeInfo"] == 1


async def test_secrets_never_appear_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper:
        config = Settings(
            venues={"paper": VenueConfig(base_url=paper.url)},
            accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="wrong-secret-xyz")},
        )
        async with ExchangePool(config) as pool:
            with pytest.raises(domain.UpstreamAuthFailed) as caught:
                await pool.read_private("paper", lambda c: c.fetch_balance())
    text = caught.value.detail + caplog.text
    assert "wrong-secret-xyz" not in text and "paper-api-key" not in text
    assert "signature=" not in text or "signature=[REDACTED]" in text


async def test_closing_the_pool_leaves_no_open_session(tmp_path: Path) -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pool = ExchangePool(settings(paper.url, budget=100_000))
            await pool.open()
            await pool.read("paper", lambda c: c.fetch_ticker("BTC/USDT"))
            await pool.read_private("paper", lambda c: c.fetch_balance())
            await pool.close()
            gc.collect()
            await asyncio.sleep(0)
        messages = [str(w.message) for w in caught]
        assert not [m for m in messages if "Unclosed" in m or "release all resources" in m], messages
        with pytest.raises(domain.UnknownVenue):
            await pool.read("paper", lambda c: c.fetch_ticker("BTC/USDT"))


async def test_a_ticker_batch_is_charged_what_binance_charges_not_ccxts_no_symbol_cost() -> None:
    async with PaperExchange(PaperConfig(port=0)) as paper, ExchangePool(settings(paper.url, budget=100_000)) as pool:
        await pool.markets("paper")
        limiter = pool.limiter("paper")
        before = limiter.stats().acquired_units
        await pool.read("paper", lambda c: c.fetch_tickers(["BTC/USDT", "ETH/USDT", "SOL/USDT"]))
        assert limiter.stats().acquired_units - before == pytest.approx(0.4)  # 2 weight, not ccxt's 80
        assert paper.stats.rate_limited == 0
