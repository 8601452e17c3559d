"""The Host allow-list (a foreign Host gets 400 and nothing reaches the venue: DNS rebinding) and CORS, off by
default and on for the configured origins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiotrade.api.hosts import HostPolicy, allowed_hosts
from aiotrade.config import HttpConfig, Settings
from tests.api.test_orders import EXCHANGE_ORDER, ORDERS
from tests.api.test_problems import assert_problem
from tests.support.stack import TEST_HOSTS, Stack, running_stack

BODY = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
DESK = "https://desk.example"


async def test_a_foreign_host_gets_400_and_an_order_sent_through_it_reaches_nothing(stack: Stack) -> None:
    rebound = {"Host": "evil.example"}  # a page on evil.example whose name now resolves to 127.0.0.1
    refused = await stack.api.post(ORDERS, json=BODY, headers={**rebound, "Idempotency-Key": "rebound-1"})
    body = assert_problem(refused, 400)
    assert body["type"].endswith("host-not-allowed") and "ALLOWED_HOSTS" in body["detail"]
    assert_problem(await stack.api.get("/api/v1/exchanges", headers=rebound), 400)
    assert_problem(await stack.api.get("/openapi.json", headers={"Host": "localhost.evil.example:8000"}), 400)
    assert stack.paper_requests(EXCHANGE_ORDER) == 0
    assert (await stack.api.get(ORDERS)).json()["orders"] == []  # nothing recorded either
    # Probes by IP address still answer; an allowed name with any port goes through.
    assert (await stack.api.get("/healthz", headers=rebound)).status_code == 200
    assert (await stack.api.get("/api/v1/exchanges", headers={"Host": "localhost:8123"})).status_code == 200


def test_the_default_allow_list_is_the_loopback_names_and_the_configured_host() -> None:
    loopback_names = {"localhost", "127.0.0.1", "[::1]"}
    assert set(allowed_hosts(Settings())) == loopback_names
    assert set(allowed_hosts(Settings(host="0.0.0.0"))) == loopback_names  # a wildcard address names no host
    assert set(allowed_hosts(Settings(host="10.0.0.5"))) == loopback_names | {"10.0.0.5"}
    assert set(allowed_hosts(Settings(host="fd00::5"))) == loopback_names | {"[fd00::5]"}
    assert allowed_hosts(Settings(http=HttpConfig(allowed_hosts=["api.example"]))) == ["api.example"]
    loopback = HostPolicy(allowed_hosts(Settings()))
    for header in ("localhost", "LOCALHOST:8000", "127.0.0.1:9", "[::1]:8000"):
        assert loopback.allows(header), header
    for header in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "[::2]", "", None):
        assert not loopback.allows(header), header
    suffix = HostPolicy([".example.com"])
    assert suffix.allows("example.com") and suffix.allows("api.example.com:443")
    assert not suffix.allows("badexample.com") and HostPolicy(["*"]).allows("anything")


async def test_cors_is_off_by_default(stack: Stack) -> None:
    preflight = await stack.api.options(ORDERS, headers=_preflight(DESK))
    assert "access-control-allow-origin" not in preflight.headers
    plain = await stack.api.get("/api/v1/exchanges", headers={"Origin": DESK})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


@pytest.fixture
async def cors_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, http=HttpConfig(allowed_hosts=TEST_HOSTS, cors_origins=[DESK])) as running:
        yield running


async def test_cors_answers_the_configured_origins_only(cors_stack: Stack) -> None:
    preflight = await cors_stack.api.options(ORDERS, headers=_preflight(DESK))
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == DESK
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "idempotency-key", "content-type"} <= allowed
    plain = await cors_stack.api.get("/api/v1/exchanges", headers={"Origin": DESK})
    assert plain.headers["access-control-allow-origin"] == DESK
    exposed = plain.headers["access-control-expose-headers"].lower()
    assert "idempotent-replayed" in exposed and "ratelimit-remaining" in exposed and "retry-after" in exposed
    foreign = await cors_stack.api.options(ORDERS, headers=_preflight("https://evil.example"))
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers
    other = await cors_stack.api.get("/api/v1/exchanges", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    # A browser's preflight carries no key; the request itself still needs one.
    async with cors_stack.client(None) as anonymous:
        assert_problem(await anonymous.get("/api/v1/exchanges", headers={"Origin": DESK}), 401)


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }
