"""Order and fill events on the live stream: numbered per account without gaps, resumable with ?since=.

Real stack, served by uvicorn: a websockets client on the stream, orders placed through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import uvicorn
import websockets

from tests.support.stack import Stack, auth_headers

ORDERS = "/api/v1/accounts/paper/orders"
BUY = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}


@contextlib.asynccontextmanager
async def served(stack: Stack) -> AsyncIterator[str]:
    config = uvicorn.Config(stack.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/api/v1/portfolio/live/stream?account=paper"
    finally:
        server.should_exit = True
        await task


async def events(ws: websockets.ClientConnection, count: int) -> list[dict]:
    found: list[dict] = []
    async with asyncio.timeout(10):
        while len(found) < count:
            frame = json.loads(await ws.recv())
            if frame["type"] == "event":
                found.append(frame)
    return found


async def test_an_order_and_its_fill_arrive_as_numbered_events_and_resume_replays_them(stack: Stack) -> None:
    async with served(stack) as url:
        async with websockets.connect(url, additional_headers=auth_headers()) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "snapshot"
            await asyncio.sleep(1.2)  # the producer has numbered from "now"
            placed = await stack.api.post(ORDERS, json=BUY)
            assert placed.status_code == 201
            live = await events(ws, 3)
        order_id = placed.json()["id"]
        kinds = [(e["kind"], e["data"].get("status") or "fill") for e in live]
        assert kinds == [("order", "PENDING"), ("order", "FILLED"), ("fill", "fill")], kinds
        assert all(e["data"].get("id", e["data"].get("order_id")) == order_id for e in live)
        seqs = [e["seq"] for e in live]
        assert seqs == list(range(seqs[0], seqs[0] + 3))  # no gaps

        # A client that saw only the first event resumes from it: the rest come at once, in order.
        async with websockets.connect(f"{url}&since={seqs[0]}", additional_headers=auth_headers()) as ws:
            resumed = await events(ws, 2)
        assert [e["seq"] for e in resumed] == seqs[1:]
        assert [e["data"] for e in resumed] == [e["data"] for e in live[1:]]
