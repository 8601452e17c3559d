"""Bad input never produces a 500, and every error is problem+json naming the parameter."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from aiotrade import errors as domain
from aiotrade.api.problems import install_problem_handlers
from tests.support.stack import Stack

pytestmark = pytest.mark.asyncio


def assert_problem(response: httpx.Response, status: int, name: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:aiotrade:problem:")
    assert body["title"] and body["detail"]
    if name is not None:
        assert name in [e["name"] for e in body.get("errors", [])], body
    return body


async def test_unknown_exchange_is_404(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/nope/ticker", params={"symbol": "BTC/USDT"})
    body = assert_problem(response, 404)
    assert "nope" in body["detail"]


async def test_unknown_symbol_is_422_and_never_reaches_the_exchange(stack: Stack) -> None:
    before = stack.paper_requests("/api/v3/ticker/24hr")
    response = await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "NOPE/USDT"})
    assert_problem(response, 422, "symbol")
    assert stack.paper_requests("/api/v3/ticker/24hr") == before


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("ticker", {"symbol": "BTCUSDT"}, "symbol"),
        ("ticker", {"symbol": "BTC/USDT; DROP"}, "symbol"),
        ("ticker", {}, "symbol"),
        ("orderbook", {"symbol": "BTC/USDT", "limit": "0"}, "limit"),
        ("orderbook", {"symbol": "BTC/USDT", "limit": "5001"}, "limit"),
        ("orderbook", {"symbol": "BTC/USDT", "limit": "ten"}, "limit"),
        ("trades", {"symbol": "BTC/USDT", "limit": "-1"}, "limit"),
        ("ohlcv", {"symbol": "BTC/USDT", "timeframe": "7m"}, "timeframe"),
        ("ohlcv", {"symbol": "BTC/USDT", "limit": "100000"}, "limit"),
        ("ohlcv", {"symbol": "BTC/USDT", "since": "yesterday"}, "since"),
        ("ohlcv", {"symbol": "BTC/USDT", "since": "2024-01-01T00:00:00"}, "since"),
        ("tickers", {"symbols": ",,"}, "symbols"),
        ("tickers", {"symbols": "BTC/USDT,NOPE/USDT"}, "symbols"),
    ],
)
async def test_bad_query_is_422_naming_the_parameter(stack: Stack, path: str, params: dict, name: str) -> None:
    response = await stack.api.get(f"/api/v1/exchanges/paper/{path}", params=params)
    assert_problem(response, 422, name)


async def test_unknown_route_and_method_are_problems_too(stack: Stack) -> None:
    assert_problem(await stack.api.get("/api/v1/nothing-here"), 404)
    assert_problem(await stack.api.delete("/api/v1/exchanges"), 405)


async def test_oversized_body_is_413(stack: Stack) -> None:
    response = await stack.api.post(
        "/api/v1/accounts/paper/orders",
        content=b"{" + b" " * 200_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (domain.UpstreamUnavailable("the venue did not answer any send"), "2"),  # names no wait of its own
        (domain.ComputeBusy("busy"), "2"),
        (domain.UpstreamUnavailable("paused by the venue", retry_after_s=7.2), "8"),  # its own wait, rounded up
        (domain.TooManyRequests("over the key's rate", retry_after_s=0.2), "1"),  # never 0
    ],
)
async def test_every_503_and_429_says_when_to_ask_again(error: domain.DomainError, retry_after: str) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/fails")
    assert answer.status_code in (429, 503)
    assert answer.headers["Retry-After"] == retry_after
    assert answer.headers["content-type"] == "application/problem+json"
