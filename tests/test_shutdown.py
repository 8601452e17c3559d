"""Shutdown under load: a real ``python -m aiotrade serve`` process sent SIGTERM while an order is in flight.

The order finishes (201, on the venue's ledger, in the store), the live-stream subscriber is closed with 1001,
a request arriving once the server is stopping is refused (503 with Retry-After, or not accepted at all once
uvicorn has closed its socket), and the lifespan closes jobs, streams, pools and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from decimal import Decimal
from pathlib import Path

import httpx
import websockets

from aiotrade.stream.hub import CLOSE_GOING_AWAY
from tests.support.servers import api_env, free_port, paper_env, serve_process
from tests.support.stack import Stack, auth_headers

ORDERS = "/api/v1/accounts/paper/orders"
STOPPED = "stopped: background jobs, live streams, exchange pools and the database are closed"


async def test_sigterm_drains_the_order_in_flight_and_closes_streams_with_1001(tmp_path: Path) -> None:
    paper_port, api_port = free_port(), free_port()
    env = api_env("", tmp_path / "api", log_level="INFO", shutdown_grace_s=10, live_interval_s=0.2)
    async with serve_process(
        "paper", ["paper"], paper_env(paper_port), port=paper_port, ready_path="/api/v3/ping", log_dir=tmp_path
    ) as paper:
        env["AIOTRADE_VENUES__PAPER__BASE_URL"] = paper.url
        async with (
            serve_process(
                "api", ["serve", "--port", str(api_port)], env, port=api_port, ready_path="/readyz", log_dir=tmp_path
            ) as api,
            httpx.AsyncClient(base_url=api.url, headers=auth_headers(), timeout=20) as client,
            httpx.AsyncClient(base_url=paper.url) as venue,
        ):
            ticker = (await client.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
            price = (Decimal(ticker["last"]) * Decimal("0.97")).quantize(Decimal("0.01"))
            stream_url = api.url.replace("http", "ws") + "/api/v1/portfolio/live/stream?account=paper"
            ws = await websockets.connect(stream_url, additional_headers=auth_headers())
            assert json.loads(await ws.recv())["type"] in ("snapshot", "error")

            # The venue holds its answer to the order for 1.5 s: SIGTERM arrives while it is in flight.
            slow = {"slow_rate": 1.0, "slow_delay_ms": 1500, "paths": ["/api/v3/order"], "methods": ["POST"]}
            assert (await venue.post("/__paper/faults", json=slow)).status_code == 200
            body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(price)}
            in_flight = asyncio.create_task(client.post(ORDERS, json=body, headers={"Idempotency-Key": "drain-1"}))
            async with asyncio.timeout(10):
                while (await venue.get("/__paper/stats")).json()["requests"].get("/api/v3/order", 0) < 1:  # noqa: ASYNC110 - polls another process
                    await asyncio.sleep(0.02)
            api.proc.send_signal(signal.SIGTERM)

            await asyncio.sleep(0.02)
            async with httpx.AsyncClient(base_url=api.url, headers=auth_headers(), timeout=5) as late:
                try:
                    refused = await late.get("/api/v1/exchanges")
                except httpx.TransportError:
                    refused = None  # uvicorn had already closed its socket: not accepted, never half-served
            if refused is not None:
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert refused.headers["retry-after"] and refused.json()["request_id"]

            placed = await in_flight
            assert placed.status_code == 201, placed.text
            order = placed.json()
            assert order["status"] == "OPEN"
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert ws.close_code == CLOSE_GOING_AWAY, (ws.close_code, ws.close_reason)

            async with asyncio.timeout(20):
                returncode = await api.proc.wait()
            assert returncode in (0, -signal.SIGTERM), api.log_text()[-3000:]
            log = api.log_text()
            assert STOPPED in log and "Traceback" not in log, log[-3000:]
            ledger = (await venue.get("/__paper/stats")).json()["requests"]
            assert ledger.get("/api/v3/order", 0) >= 1
        # Nothing lost: the order the drain let finish is on the venue (a restarted API finds it too).
        async with httpx.AsyncClient(base_url=paper.url) as venue:
            await venue.post("/__paper/faults", json={})
        async with (
            serve_process(
                "api-again",
                ["serve", "--port", str(api_port)],
                env,
                port=api_port,
                ready_path="/readyz",
                log_dir=tmp_path,
            ) as again,
            httpx.AsyncClient(base_url=again.url, headers=auth_headers(), timeout=20) as client,
        ):
            fetched = await client.get(f"{ORDERS}/{order['id']}")
            assert fetched.status_code == 200 and fetched.json()["venue_confirmed"] is True
            assert fetched.json()["exchange_order_id"] == order["exchange_order_id"]


async def test_a_stopping_server_answers_new_requests_503_with_retry_after(stack: Stack) -> None:
    assert (await stack.api.get("/api/v1/exchanges")).status_code == 200  # the control
    stack.app.state.drain.start()
    refused = await stack.api.get("/api/v1/exchanges", headers={"X-Request-ID": "late-1"})
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "5" and refused.headers["connection"] == "close"
    assert refused.headers["x-request-id"] == "late-1" and refused.json()["request_id"] == "late-1"
    assert refused.json()["type"].endswith("shutting-down")
