"""stream_live over a real WebSocket: typed frames, and after the server goes away and comes back on its port,
the events that happened meanwhile arrive (resumed with ?since=), each once; a refused key is not retried."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade.client import AiotradeClient, FillEvent, LiveFrame, OrderEvent, SnapshotFrame, StreamRefused
from aiotrade.models.orders import CreateOrderRequest, OrderSide, OrderType
from tests.client.conftest import Served, uvicorn_serving
from tests.support.stack import TEST_API_KEY, running_stack

MARKET_BUY = CreateOrderRequest(symbol="ETH/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.01"))


@contextlib.asynccontextmanager
async def collecting(frames: AsyncIterator[LiveFrame]) -> AsyncIterator[asyncio.Queue[LiveFrame]]:
    queue: asyncio.Queue[LiveFrame] = asyncio.Queue()

    async def pump() -> None:
        async for frame in frames:
            await queue.put(frame)

    task = asyncio.create_task(pump())
    try:
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def events_of(queue: asyncio.Queue[LiveFrame], order_id: str) -> list[OrderEvent | FillEvent]:
    """Frames up to the fill of ``order_id`` (a market buy fills at once); the events among them."""
    seen: list[OrderEvent | FillEvent] = []
    async with asyncio.timeout(30):  # a hang guard, not a speed claim
        while True:
            frame = await queue.get()
            if isinstance(frame, OrderEvent | FillEvent):
                seen.append(frame)
                if isinstance(frame, FillEvent) and frame.fill.order_id == order_id:
                    return seen


async def test_the_stream_resumes_after_a_server_restart_with_the_events_it_missed(tmp_path: Path) -> None:
    async with running_stack(tmp_path, live_interval_s=0.2) as stack, contextlib.AsyncExitStack() as first_life:
        port = await first_life.enter_async_context(uvicorn_serving(stack.app))
        client = AiotradeClient(f"http://127.0.0.1:{port}", api_key=TEST_API_KEY)
        async with client, collecting(client.stream_live("paper")) as frames:
            async with asyncio.timeout(30):
                first = await frames.get()
            assert isinstance(first, SnapshotFrame) and first.account == "paper"
            assert isinstance(first.snapshot.available_balance, Decimal)
            before = await client.create_order("paper", MARKET_BUY)
            seen = await events_of(frames, before.id)
            assert any(isinstance(e, OrderEvent) and e.order.id == before.id for e in seen)

            await first_life.aclose()  # the server goes away; an order is placed meanwhile (in-process)
            placed = await stack.api.post("/api/v1/accounts/paper/orders", json=MARKET_BUY.model_dump(mode="json"))
            assert placed.status_code == 201, placed.text
            during = placed.json()["id"]
            async with uvicorn_serving(stack.app, port=port):  # back on the same port
                resumed = await events_of(frames, during)
    assert any(isinstance(e, OrderEvent) and e.order.id == during for e in resumed)
    seqs = [e.seq for e in seen + resumed]
    assert seqs == sorted(set(seqs))  # each event once, in order, across the reconnect


async def test_a_refused_key_ends_the_stream_instead_of_reconnecting(served: Served) -> None:
    async with AiotradeClient(served.url, api_key="at_" + "y" * 43) as client:
        with pytest.raises(StreamRefused) as refused:
            async with asyncio.timeout(30):
                async for _ in client.stream_live("paper"):
                    pass
    assert refused.value.code == 1008 and "unauthorized" in refused.value.reason
