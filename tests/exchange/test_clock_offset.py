"""The venue's clock offset, through real ccxt against the paper exchange with a skewed clock: learned before the
first signed request, re-learned after a -1021 with one resend (a read, and an order placed exactly once), and a
refusal that the clock does not explain (a request held past its recvWindow) left to stand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import ccxt.async_support as ccxt
import pytest

from aiotrade import errors as domain
from aiotrade.config import AccountConfig, RateLimitConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange.pool import ExchangePool, SharedLimitSettings
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.paper.server import PaperExchange
from aiotrade.paper.urls import ccxt_config
from tests.support.faults import Scripted

AHEAD_MS = 30_000  # the venue's clock runs 30 s ahead: every unsynchronised timestamp is past recvWindow (10 s)


@contextlib.asynccontextmanager
async def skewed(offset_ms: int) -> AsyncIterator[tuple[PaperExchange, ExchangePool]]:
    settings = Settings(
        venues={"paper": VenueConfig(base_url="http://127.0.0.1:1", rate_limit=RateLimitConfig(budget=100_000))},
        accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="paper-secret")},
        retry=RetryConfig(attempts=2, initial_delay_s=0.01, max_delay_s=0.02),
    )
    async with PaperExchange(PaperConfig(port=0, clock_offset_ms=offset_ms)) as paper:
        pool = ExchangePool(settings, base_url_overrides={"paper": paper.url}, shared=SharedLimitSettings())
        async with pool:
            yield paper, pool


def orders_with(paper: PaperExchange, client_order_id: str) -> list[dict]:
    """The venue's own ledger: every order it placed with this client id."""
    return [o for o in paper.engine.ledger() if o["clientOrderId"] == client_order_id]


async def test_the_control_an_unsynchronised_client_is_refused_with_1021() -> None:
    async with PaperExchange(PaperConfig(port=0, clock_offset_ms=AHEAD_MS)) as paper:
        client = ccxt.binance(ccxt_config(paper.url, apiKey="paper-api-key", secret="paper-secret"))
        try:
            with pytest.raises(ccxt.InvalidNonce):
                await client.fetch_balance()
        finally:
            await client.close()


async def test_the_offset_is_learned_before_the_first_signed_request() -> None:
    async with skewed(AHEAD_MS) as (paper, pool):
        balance = await pool.read_private("paper", lambda c: c.fetch_balance())
        assert balance["USDT"]["free"] is not None
        assert paper.stats.requests.get("/api/v3/time", 0) == 1
        assert paper.stats.requests.get("/api/v3/account", 0) == 1  # signed right the first time
        difference = pool._venue("paper").accounts["paper"].options["timeDifference"]
        assert abs(difference + AHEAD_MS) < 1_000  # ours minus the venue's


async def test_a_read_refused_after_the_clock_moved_is_re_learned_and_sent_once_more() -> None:
    async with skewed(0) as (paper, pool):
        await pool.read_private("paper", lambda c: c.fetch_balance())
        paper.set_clock_offset(AHEAD_MS)  # the venue's clock jumps (or ours drifted)
        before = paper.stats.requests.get("/api/v3/account", 0)
        balance = await pool.read_private("paper", lambda c: c.fetch_balance())
        assert balance["USDT"]["free"] is not None
        assert paper.stats.requests["/api/v3/account"] - before == 2  # refused once, then signed right
        assert paper.stats.requests["/api/v3/time"] == 2


async def test_an_order_refused_for_its_timestamp_is_resent_once_and_placed_exactly_once() -> None:
    async with skewed(0) as (paper, pool):
        await pool.read_private("paper", lambda c: c.fetch_balance())
        paper.set_clock_offset(-AHEAD_MS)  # now the venue's clock is behind: our timestamps look early
        order = await pool.send_once(
            "paper", lambda c: c.create_order("BTC/USDT", "market", "buy", "0.001", None, {"clientOrderId": "skew-1"})
        )
        assert order["clientOrderId"] == "skew-1"
        assert len(orders_with(paper, "skew-1")) == 1
        assert paper.stats.requests["/api/v3/order"] == 2  # the refusal and the order


async def test_a_refusal_the_clock_does_not_explain_stands_and_nothing_is_resent() -> None:
    # Held in flight past its recvWindow: the offset learned afterwards has not moved, so no resend.
    async with skewed(0) as (paper, pool):
        await pool.read_private("paper", lambda c: c.fetch_balance())
        pool._venue("paper").accounts["paper"].options["recvWindow"] = 1_000
        paper.set_fault_policy(Scripted("POST", "/api/v3/order", [Fault(FaultKind.SLOW, delay_ms=1_500)]))
        with pytest.raises(domain.DomainError, match="recvWindow") as refused:
            await pool.send_once(
                "paper", lambda c: c.create_order("BTC/USDT", "market", "buy", "0.001", None, {"clientOrderId": "late"})
            )
        assert refused.value.order_may_exist is False
        assert paper.stats.requests["/api/v3/order"] == 1 and orders_with(paper, "late") == []
