"""RequestContext on a tiny app: request ids, access lines, route-template metrics, WebSocket handshakes."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from aiotrade.api.middleware import UNMATCHED, RequestContext
from aiotrade.observability.logs import current_request_id
from tests.observability.logcapture import captured_logs

TICKER = "/api/v1/exchanges/{exchange}/ticker"
STREAM = "/api/v1/portfolio/live/stream"

stdlib_log = logging.getLogger("aiotrade.test.endpoint")


def make_app() -> FastAPI:
    app = FastAPI()
    market = APIRouter(prefix="/api/v1/exchanges")

    @market.get("/{exchange}/ticker")
    async def ticker(exchange: str) -> dict[str, str | None]:
        stdlib_log.info("ticker for %s", exchange)
        structlog.get_logger("aiotrade.test.endpoint").info("ticker served", exchange=exchange)
        return {"request_id": current_request_id()}

    orders = APIRouter()

    @orders.get("/orders/{order_id}")
    async def order(account: str, order_id: str) -> dict[str, str]:
        return {"account": account, "order_id": order_id}

    nested = APIRouter()
    nested.include_router(orders, prefix="/accounts/{account}")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("aiotrade.test.problems").exception("unhandled error on %s", request.url.path)
        return JSONResponse({"request_id": current_request_id()}, status_code=500)

    @app.websocket(STREAM)
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"request_id": current_request_id()})
        await websocket.close()

    @app.websocket("/api/v1/refused")
    async def refused(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    app.include_router(market)
    app.include_router(nested, prefix="/api/v1")
    app.add_exception_handler(Exception, unexpected)
    app.add_middleware(RequestContext)
    return app


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: like uvicorn, the client gets the 500 while the exception goes on outward.
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://aiotrade.test") as client:
        yield client


def duration_count(route: str, method: str = "GET", status: str = "200") -> float:
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("aiotrade_http_request_duration_seconds_count", labels) or 0.0


def handshakes(route: str, status: str) -> float:
    labels = {"route": route, "status": status}
    return REGISTRY.get_sample_value("aiotrade_websocket_handshakes_total", labels) or 0.0


async def test_a_sane_request_id_is_kept_echoed_and_on_every_log_line_of_the_request(api: httpx.AsyncClient) -> None:
    with captured_logs("INFO", "json") as logs:
        response = await api.get("/api/v1/exchanges/paper/ticker", headers={"X-Request-ID": "client-id.42"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "client-id.42"
    assert response.json() == {"request_id": "client-id.42"}
    records = [r for r in logs.records() if r["logger"].startswith("aiotrade.")]  # httpx logs its requests too
    assert {r["logger"] for r in records} == {"aiotrade.test.endpoint", "aiotrade.access"}
    assert len(records) == 3
    assert all(r["request_id"] == "client-id.42" for r in records)


@pytest.mark.parametrize(
    "incoming",
    [None, "x" * 65, "has space", "a=b", "semi;colon", "at_" + secrets.token_urlsafe(32)],
)
async def test_a_missing_or_insane_request_id_is_replaced_by_a_fresh_one(
    api: httpx.AsyncClient, incoming: str | None
) -> None:
    headers = {"X-Request-ID": incoming} if incoming is not None else {}
    first = await api.get("/api/v1/exchanges/paper/ticker", headers=headers)
    second = await api.get("/api/v1/exchanges/paper/ticker", headers=headers)
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    assert first.json() == {"request_id": ids[0]}


async def test_each_request_logs_one_access_line_with_the_route_template(api: httpx.AsyncClient) -> None:
    before = duration_count(TICKER)
    with captured_logs("INFO", "json") as logs:
        response = await api.get("/api/v1/exchanges/binance/ticker", params={"symbol": "BTC/USDT"})
    access = [r for r in logs.records() if r["logger"] == "aiotrade.access"]
    assert len(access) == 1
    line = access[0]
    assert line["event"] == "request"
    assert (line["method"], line["route"], line["status"]) == ("GET", TICKER, 200)
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 5_000
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert duration_count(TICKER) == before + 1


async def test_route_templates_keep_the_prefixes_of_included_routers(api: httpx.AsyncClient) -> None:
    template = "/api/v1/accounts/{account}/orders/{order_id}"
    before = duration_count(template)
    for order_id in ("o-1", "o-2", "o-3"):
        assert (await api.get(f"/api/v1/accounts/main/orders/{order_id}")).status_code == 200
    assert duration_count(template) == before + 3


async def test_unmatched_paths_share_one_label(api: httpx.AsyncClient) -> None:
    before = duration_count(UNMATCHED, status="404")
    for path in ("/wp-admin", "/.env", "/api/v1/nothing/here"):
        assert (await api.get(path)).status_code == 404
    assert duration_count(UNMATCHED, status="404") == before + 3
    assert duration_count("/wp-admin", status="404") == 0


async def test_an_unhandled_exception_counts_as_500_and_its_error_line_carries_the_request_id(
    api: httpx.AsyncClient,
) -> None:
    before = duration_count("/boom", status="500")
    with captured_logs("INFO", "json") as logs:
        response = await api.get("/boom", headers={"X-Request-ID": "broken-1"})
    assert response.status_code == 500
    assert response.json() == {"request_id": "broken-1"}  # the handler outside the middleware still sees it
    assert duration_count("/boom", status="500") == before + 1
    by_logger = {r["logger"]: r for r in logs.records()}
    assert by_logger["aiotrade.test.problems"]["request_id"] == "broken-1"
    assert "RuntimeError: kaboom" in by_logger["aiotrade.test.problems"]["exception"]
    assert by_logger["aiotrade.access"]["status"] == 500


async def test_no_access_line_when_info_is_off(api: httpx.AsyncClient) -> None:
    before = duration_count(TICKER)
    with captured_logs("WARNING", "json") as logs:
        assert (await api.get("/api/v1/exchanges/paper/ticker")).status_code == 200
    assert [r for r in logs.records() if r["level"] == "info"] == []
    assert duration_count(TICKER) == before + 1  # metrics do not depend on the log level


async def test_a_websocket_handshake_gets_the_request_id_and_counts_by_route() -> None:
    before = handshakes(STREAM, "101")
    with captured_logs("INFO", "json") as logs:
        async with serve(make_app()) as url:
            async with connect(f"{url}{STREAM}", additional_headers={"X-Request-ID": "ws-7"}) as ws:
                assert ws.response is not None
                assert ws.response.headers["X-Request-ID"] == "ws-7"
                assert await ws.recv() == '{"request_id":"ws-7"}'
            await asyncio.sleep(0.05)  # the server's side of the close
    assert handshakes(STREAM, "101") == before + 1
    access = [r for r in logs.records() if r["logger"] == "aiotrade.access"]
    assert [(r["event"], r["route"], r["request_id"]) for r in access] == [
        ("websocket", STREAM, "ws-7"),
        ("websocket closed", STREAM, "ws-7"),
    ]


async def test_a_refused_websocket_handshake_counts_as_403() -> None:
    before = handshakes("/api/v1/refused", "403")
    async with serve(make_app()) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}/api/v1/refused"):
                pass
    assert refused.value.response.status_code == 403
    assert handshakes("/api/v1/refused", "403") == before + 1


class serve:
    """uvicorn serving ``app`` on a free loopback port in this loop; yields its ws:// base URL."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(5):
            while not self.server.started:
                assert not self.task.done(), "the server did not start"
                await asyncio.sleep(0.005)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
