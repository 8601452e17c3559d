"""The live portfolio stream over WebSocket: a thin adapter onto the app's LiveHub.

``WS /api/v1/portfolio/live/stream?account=`` (default: the hub's default account). Frames are JSON text:
``{"type": "snapshot", "account", "data"}`` on connect and on every change, ``{"type": "event", "seq",
"account", "kind": "order" | "fill", "data"}`` for each order transition and fill (numbered per account
without gaps: resume with ``?since=<last seq>``), ``{"type": "error", "account", "detail"}`` when the
snapshot cannot be computed. Close codes: 1008 unknown account, 1013 too slow (the
client fell behind by more than its queue), 1001 server shutting down.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from aiotrade.api.auth import StreamAccess, issue_ticket, stream_access
from aiotrade.api.deps import Caller
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.keys import Scope, WsTicket
from aiotrade.stream.hub import LiveHub

router = APIRouter(tags=["portfolio-live"])


async def get_live_hub(connection: HTTPConnection) -> LiveHub:
    return connection.app.state.live_hub


Hub = Annotated[LiveHub, Depends(get_live_hub)]
Account = Annotated[str | None, Query(description="A configured account; default: the default account.")]
Since = Annotated[
    int | None, Query(ge=0, le=2**62, description="Resume: first send the account's events numbered above this.")
]


Access = Annotated[StreamAccess, Depends(stream_access)]


@router.websocket("/api/v1/portfolio/live/stream", name="portfolio_live_stream")
async def live_stream(
    websocket: WebSocket, hub: Hub, access: Access, account: Account = None, since: Since = None
) -> None:
    # Accept first, so that a refusal is a close code the client can read rather than an HTTP 403.
    await websocket.accept()
    if access.close is not None:
        await websocket.close(*access.close)
        return
    await hub.serve(WebSocketPeer(websocket), account, since=since)


@router.post(
    "/api/v1/auth/ws-ticket",
    operation_id="create_ws_ticket",
    summary="A single-use ticket (30 s) for one live-stream handshake from a browser: `?ticket=`",
    tags=["portfolio"],
    responses=PROBLEM_RESPONSES,
    dependencies=[require(Scope.READ)],
)
async def ws_ticket(request: Request, caller: Caller) -> WsTicket:
    return await issue_ticket(request, caller)


class WebSocketPeer:
    """A Starlette WebSocket as the hub's ``Peer``: transport errors become ``ConnectionError``."""

    __slots__ = ("_websocket",)

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def send_text(self, data: str) -> None:
        try:
            await self._websocket.send_text(data)
        except (WebSocketDisconnect, WebSocketDisconnected) as exc:
            raise ConnectionError("client gone") from exc

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._websocket.close(code, reason)
        except (WebSocketDisconnect, WebSocketDisconnected) as exc:
            raise ConnectionError("client gone") from exc

    async def wait_closed(self) -> None:
        try:
            while (await self._websocket.receive())["type"] != "websocket.disconnect":
                pass  # the stream is one-way: whatever the client sends is ignored
        except WebSocketDisconnected:
            pass
