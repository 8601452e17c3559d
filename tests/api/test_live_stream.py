"""The live stream through a real server: websockets clients -> uvicorn -> the router -> LiveHub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from aiotrade.api.auth import StreamAccess, stream_access
from aiotrade.api.routers import live_stream
from aiotrade.stream.hub import CLOSE_TOO_SLOW, CLOSE_UNKNOWN_ACCOUNT, LiveHub

PATH = "/api/v1/portfolio/live/stream"


class Snapshot(BaseModel):
    account: str
    equity: int
    blob: str = ""
    timestamp: datetime


class FakeCompute:
    """Counts calls and overlaps; ``bump`` makes every computation a new snapshot."""

    def __init__(self, *, blob_bytes: int = 0) -> None:
        self.equity = 100
        self.bump = False
        self.blob = secrets.token_hex(blob_bytes // 2)  # incompressible-ish: permessage-deflate won't hide it
        self.calls = 0
        self.active = 0
        self.max_active = 0

    async def __call__(self, account: str) -> Snapshot:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0)
            if self.bump:
                self.equity += 1
            return Snapshot(account=account, equity=self.equity, blob=self.blob, timestamp=datetime.now(UTC))
        finally:
            self.active -= 1


@dataclass
class Served:
    url: str
    hub: LiveHub
    compute: FakeCompute

    def ws(self, query: str = "account=main", **options: Any) -> connect:
        return connect(f"{self.url}{PATH}?{query}" if query else f"{self.url}{PATH}", **options)


@contextlib.asynccontextmanager
async def serve(compute: FakeCompute, **hub_options: Any) -> AsyncIterator[Served]:
    """A tiny app with only the live router, served by uvicorn on a free loopback port in this loop."""
    hubs: list[LiveHub] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        options = {"accounts": {"main", "other"}, "default_account": "main", "interval_s": 0.02} | hub_options
        async with LiveHub(compute, **options) as hub:
            app.state.live_hub = hub
            hubs.append(hub)
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(live_stream.router)
    app.dependency_overrides[stream_access] = let_anyone_in  # the hub's promises; access: tests/api/test_auth*
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(5):
            while not server.started:
                assert not task.done(), "the server did not start"
                await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(f"ws://127.0.0.1:{port}", hubs[0], compute)
    finally:
        server.should_exit = True
        await task


async def let_anyone_in() -> StreamAccess:
    return StreamAccess(principal=None)


async def eventually(predicate: Callable[[], bool], within_s: float = 3.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 -- polls state the test does not own
            await asyncio.sleep(0.005)


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(3):
        return json.loads(await ws.recv())


async def close_reason_of(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes; return its close code and reason."""
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


def live_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("aiotrade-live")]


async def test_snapshot_on_connect() -> None:
    async with serve(FakeCompute()) as served, served.ws() as ws:
        frame = await next_frame(ws)
        assert frame["type"] == "snapshot" and frame["account"] == "main"
        assert frame["data"]["equity"] == 100 and frame["data"]["account"] == "main"


async def test_omitted_account_streams_the_default_account() -> None:
    async with serve(FakeCompute(), default_account="other") as served, served.ws(query="") as ws:
        assert (await next_frame(ws))["account"] == "other"


async def test_update_is_pushed_on_change_and_only_then() -> None:
    compute = FakeCompute()
    async with serve(compute) as served, served.ws() as ws:
        assert (await next_frame(ws))["data"]["equity"] == 100
        calls = compute.calls
        await eventually(lambda: compute.calls >= calls + 3)
        compute.equity = 175
        frame = await next_frame(ws)  # the timestamps in between were not news
        assert frame["type"] == "snapshot" and frame["data"]["equity"] == 175


async def test_fifty_concurrent_clients_share_one_computation() -> None:
    compute = FakeCompute()
    interval = 0.05
    async with serve(compute, interval_s=interval) as served, contextlib.AsyncExitStack() as stack:
        clients = await asyncio.gather(*(stack.enter_async_context(served.ws()) for _ in range(50)))
        first = await asyncio.gather(*(next_frame(ws) for ws in clients))
        assert all(frame == first[0] for frame in first)
        assert served.hub.subscribers("main") == 50

        calls, started = compute.calls, asyncio.get_running_loop().time()
        await asyncio.sleep(10 * interval)
        elapsed = asyncio.get_running_loop().time() - started
        assert compute.calls - calls <= elapsed / interval + 1  # not 50 per interval
        assert compute.max_active == 1

        compute.equity = 999
        updates = await asyncio.gather(*(next_frame(ws) for ws in clients))
        assert {frame["data"]["equity"] for frame in updates} == {999}


async def test_slow_client_is_dropped_with_1013_while_others_keep_receiving() -> None:
    compute = FakeCompute(blob_bytes=256 * 1024)
    compute.bump = True  # every computation is a new, large snapshot
    async with serve(compute, interval_s=0.01, queue_size=2) as served, contextlib.AsyncExitStack() as stack:
        fast = [await stack.enter_async_context(served.ws(max_size=None, compression=None)) for _ in range(2)]
        received = [0] * len(fast)

        async def read(index: int, ws: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    received[index] += 1

        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(fast)]
        stack.callback(lambda: [reader.cancel() for reader in readers])

        # A client that never reads, on a socket with a tiny receive buffer: the server's writes back up.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        host, port = served.url.removeprefix("ws://").split(":")
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        slow = await stack.enter_async_context(served.ws(sock=sock, max_size=None, max_queue=1, compression=None))

        await eventually(lambda: served.hub.subscribers("main") == 3)
        await eventually(lambda: served.hub.subscribers("main") == 2, within_s=5)
        before = list(received)
        await eventually(lambda: all(now >= then + 5 for now, then in zip(received, before, strict=True)))
        assert all(ws.state is State.OPEN for ws in fast)

        # Once it reads again it finds the frames it had been sent, then the close frame with the code.
        code, reason = await close_reason_of(slow)
        assert code == CLOSE_TOO_SLOW and reason
        await eventually(lambda: served.hub.open_streams() == 2)


async def test_unknown_account_is_closed_with_1008_before_any_computation() -> None:
    compute = FakeCompute()
    async with serve(compute) as served, served.ws(query="account=nobody") as ws:
        code, reason = await close_reason_of(ws)
        assert code == CLOSE_UNKNOWN_ACCOUNT and reason == "unknown account"
        assert compute.calls == 0 and served.hub.open_streams() == 0


async def test_disconnects_leave_the_hub_empty() -> None:
    compute = FakeCompute()
    async with serve(compute) as served:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(served.ws(query=q)) for q in ("account=main", "account=other")]
            clients += [await stack.enter_async_context(served.ws()) for _ in range(8)]
            await asyncio.gather(*(next_frame(ws) for ws in clients))
            assert served.hub.streaming() == {"main", "other"}
            # One leaves without a closing handshake: the connection just drops.
            clients.pop().transport.abort()
            await eventually(lambda: served.hub.subscribers("main") == 8)
        await eventually(lambda: served.hub.open_streams() == 0 and not served.hub.streaming() and not live_tasks())
        calls = compute.calls
        await asyncio.sleep(0.1)
        assert compute.calls == calls


async def test_server_shutdown_closes_open_streams() -> None:
    compute = FakeCompute()
    async with serve(compute) as served:
        ws = await connect(f"{served.url}{PATH}")
        await next_frame(ws)
    code, _ = await close_reason_of(ws)
    assert code in (1001, 1012)  # uvicorn closes with 1012 before the lifespan closes the hub
    assert not live_tasks()
