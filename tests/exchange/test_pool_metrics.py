"""The exchange layer's metrics, read back from the Prometheus registry after real requests to the paper exchange:
upstream requests by endpoint and outcome with their latency, limiter waits and budget used, retries, cache
results and the circuit's state."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from aiotrade import errors as domain
from aiotrade.config import AccountConfig, BreakerConfig, RateLimitConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange.breaker import CircuitState
from aiotrade.exchange.cache import MarketCache
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.exchange.pool import ExchangePool, SharedLimitSettings
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange

VENUE = "metrics-paper"
TICKER = "GET public/ticker/24hr"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_upstream_limiter_retry_cache_and_circuit_metrics_follow_real_requests() -> None:
    settings = Settings(
        venues={VENUE: VenueConfig(rate_limit=RateLimitConfig(budget=100_000))},
        accounts={"acct": AccountConfig(venue=VENUE, api_key="paper-api-key", secret="paper-secret")},
        default_account="acct",
        retry=RetryConfig(attempts=2, initial_delay_s=0.01, max_delay_s=0.02),
        breaker=BreakerConfig(failure_threshold=2, reset_timeout_s=5),
    )
    async with PaperExchange(PaperConfig(port=0)) as paper:
        pool = ExchangePool(settings, base_url_overrides={VENUE: paper.url}, shared=SharedLimitSettings())
        async with pool:
            gateway = ExchangeGateway(pool, cache=MarketCache())
            ok_before = sample("aiotrade_upstream_requests_total", venue=VENUE, endpoint=TICKER, outcome="ok")
            waits_before = sample("aiotrade_limiter_wait_seconds_count", venue=VENUE)
            await gateway.ticker(VENUE, "BTC/USDT")
            await gateway.ticker(VENUE, "BTC/USDT")  # from the cache: no request
            ok = sample("aiotrade_upstream_requests_total", venue=VENUE, endpoint=TICKER, outcome="ok")
            assert ok == ok_before + 1
            assert sample("aiotrade_upstream_request_duration_seconds_count", venue=VENUE, endpoint=TICKER) >= 1
            assert sample("aiotrade_limiter_wait_seconds_count", venue=VENUE) > waits_before
            assert 0 < sample("aiotrade_limiter_budget_used_ratio", venue=VENUE) < 1
            assert sample("aiotrade_cache_requests_total", kind="ticker", result="hit") >= 1
            assert sample("aiotrade_circuit_state", venue=VENUE) == CircuitState.CLOSED

            paper.set_faults(error_rate=1.0, paths=frozenset({"/api/v3/ticker/24hr"}))
            failed_before = sample(
                "aiotrade_upstream_requests_total", venue=VENUE, endpoint=TICKER, outcome="exchange-unavailable"
            )
            retries_before = sample("aiotrade_upstream_retries_total", venue=VENUE, endpoint=TICKER)
            for symbol in ("ETH/USDT", "SOL/USDT"):
                with pytest.raises(domain.UpstreamUnavailable):
                    await gateway.ticker(VENUE, symbol)
            failed = sample(
                "aiotrade_upstream_requests_total", venue=VENUE, endpoint=TICKER, outcome="exchange-unavailable"
            )
            assert failed - failed_before == 4  # two reads of two attempts each
            assert sample("aiotrade_upstream_retries_total", venue=VENUE, endpoint=TICKER) - retries_before == 2
            assert sample("aiotrade_circuit_state", venue=VENUE) == CircuitState.OPEN
