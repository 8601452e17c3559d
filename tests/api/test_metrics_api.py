"""GET /metrics through the real app: admin only, Prometheus text, and after real traffic every metric the
app records outside the exchange layer is there with labels from small sets (no secret, no key)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from aiotrade.config import PAPER_SECRET, OrdersConfig
from aiotrade.services.orders.reconciliation import reconcile
from aiotrade.store.orders import NewOrder
from tests.api.test_problems import assert_problem
from tests.support.stack import TEST_API_KEY, Stack
from tests.test_stream_hub import FakeCompute, FakePeer, eventually, make_hub, subscribe

ORDERS = "/api/v1/accounts/paper/orders"
TICKER = "/api/v1/exchanges/paper/ticker"

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(stack: Stack) -> tuple[Samples, str]:
    answer = await stack.api.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found, answer.text


def value(samples: Samples, name: str, match: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(v for labels, v in samples.get(name, []) if match(labels))


async def test_metrics_need_the_admin_scope(stack: Stack) -> None:
    reader = await stack.make_key("reader", scopes="read,trade")
    async with stack.client(reader.key) as client:
        assert_problem(await client.get("/metrics"), 403)
    async with stack.client(None) as anonymous:
        assert_problem(await anonymous.get("/metrics"), 401)
    assert (await stack.api.get("/metrics")).status_code == 200


async def test_real_traffic_shows_in_every_metric_with_sane_labels(stack: Stack) -> None:
    before, _ = await scrape(stack)
    ticker = (await stack.api.get(TICKER, params={"symbol": "BTC/USDT"})).json()
    assert (await stack.api.get(TICKER, params={"symbol": "NOPE/USDT"})).status_code == 422
    assert (await stack.api.get("/api/v1/no/such/path")).status_code == 404
    price = (Decimal(ticker["last"]) * Decimal("0.97")).quantize(Decimal("0.01"))
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(price)}
    headers = {"Idempotency-Key": "metrics-1"}
    first = await stack.api.post(ORDERS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert (await stack.api.post(ORDERS, json=body, headers=headers)).json()["id"] == first.json()["id"]

    # An order recorded but never sent: the reconciler settles it once its landing window has passed.
    store = stack.app.state.store
    await store.insert_pending(
        NewOrder("paper", "paper", "never-sent-1", "BTC/USDT", "buy", "limit", "GTC", Decimal("0.001"), None, price)
    )
    config = OrdersConfig(landing_window_ms=100, clock_skew_ms=0, idempotency_lease_s=0.01)
    await asyncio.sleep(0.2)
    assert await reconcile(stack.gateway, store, config) >= 1
    assert (await store.get("paper", "never-sent-1")).status == "REJECTED"

    # Live stream: one subscriber on the app's hub, and a slow one dropped by a hub of its own.
    peer = FakePeer()
    streaming = asyncio.create_task(stack.app.state.live_hub.serve(peer, "paper"))
    await eventually(lambda: stack.app.state.live_hub.subscribers("paper") == 1, within_s=10)
    compute = FakeCompute()
    compute.bump_each_call = True
    hub = make_hub(compute, queue_size=1)
    [(slow, slow_task)] = await subscribe(hub, 1)
    await eventually(lambda: bool(slow.raw))
    slow.stall()
    await eventually(lambda: slow.closed is not None)
    await slow_task
    await hub.close()
    await asyncio.sleep(0.05)  # the app's loop monitor samples every 10 ms

    during, text = await scrape(stack)
    peer.leave()
    await streaming
    after, _ = await scrape(stack)

    assert TEST_API_KEY not in text and PAPER_SECRET not in text and "Bearer" not in text
    http = "aiotrade_http_request_duration_seconds_count"
    template = "/api/v1/exchanges/{exchange}/ticker"
    assert value(during, http, lambda lb: lb == {"route": template, "method": "GET", "status": "200"}) >= 1
    assert value(during, http, lambda lb: lb["route"] == template and lb["status"] == "422") >= 1
    assert value(during, http, lambda lb: lb["route"] == "<unmatched>" and lb["status"] == "404") >= 1
    routes = {labels["route"] for labels, _ in during[http]}
    assert not [r for r in routes if "paper" in r or "BTC" in r], routes  # templates only

    # The way out to the venue (hooks in exchange/): templates and slugs, never URLs or symbols.
    upstream = [labels for labels, _ in during["aiotrade_upstream_requests_total"]]
    assert {"venue": "paper", "endpoint": "GET public/ticker/24hr", "outcome": "ok"} in upstream, upstream
    assert not [lb for lb in upstream if "BTC" in lb["endpoint"] or "?" in lb["endpoint"] or "//" in lb["endpoint"]]
    assert value(during, "aiotrade_upstream_request_duration_seconds_count", lambda lb: lb["venue"] == "paper") >= 1
    assert value(during, "aiotrade_limiter_wait_seconds_count", lambda lb: lb == {"venue": "paper"}) >= 1
    assert [v for lb, v in during["aiotrade_limiter_budget_used_ratio"] if lb == {"venue": "paper"}]
    assert [v for lb, v in during["aiotrade_circuit_state"] if lb == {"venue": "paper"}] == [0.0]
    cache = {(lb["kind"], lb["result"]) for lb, _ in during["aiotrade_cache_requests_total"]}
    assert cache and {result for _, result in cache} <= {"hit", "miss", "joined"}, cache
    assert "aiotrade_upstream_retries_total" in text  # declared; counted when a read is tried again

    transitions = "aiotrade_order_transitions_total"
    assert value(during, transitions, lambda lb: lb == {"from": "PENDING", "to": "OPEN"}) > value(
        before, transitions, lambda lb: lb == {"from": "PENDING", "to": "OPEN"}
    )
    assert value(during, transitions, lambda lb: lb == {"from": "PENDING", "to": "REJECTED"}) >= 1
    replays = "aiotrade_idempotency_replays_total"
    assert value(during, replays) == value(before, replays) + 1
    runs = "aiotrade_reconciler_runs_total"
    assert value(during, runs) >= value(before, runs) + 1
    assert value(during, "aiotrade_reconciler_settlements_total", lambda lb: lb == {"outcome": "not_found"}) >= 1

    assert value(during, "aiotrade_live_subscribers") == value(before, "aiotrade_live_subscribers") + 1
    assert value(after, "aiotrade_live_subscribers") == value(before, "aiotrade_live_subscribers")
    dropped = "aiotrade_live_dropped_total"
    assert value(during, dropped) == value(before, dropped) + 1
    lag = "aiotrade_event_loop_lag_seconds_count"
    assert value(during, lag) > value(before, lag)
    assert value(during, "aiotrade_event_loop_lag_seconds_bucket", lambda lb: lb["le"] == "+Inf") == value(during, lag)
