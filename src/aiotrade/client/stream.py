"""The live stream as typed frames, over one WebSocket that is made again when it drops.

A dropped connection (server restart, network, "too slow" 1013) is reconnected with backoff and resumed with
``?since=<last event seq>``, so order and fill events that happened meanwhile still arrive, each once and in
order (a replayed event already seen is skipped). A refusal a reconnect cannot fix (close 1008: key, scope or
account; an HTTP answer to the handshake) raises `StreamRefused`; as many failed reconnects in a row as the
policy allows raise `TransportFailed`. Without ``since`` and before the first event, a reconnect cannot know
what it missed: the next snapshot is whole, events from before it are not replayed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aiotrade.client import retrying
from aiotrade.client.errors import StreamRefused, TransportFailed
from aiotrade.client.retrying import RetryPolicy
from aiotrade.models.account import Fill
from aiotrade.models.orders import Order
from aiotrade.models.portfolio import LiveSnapshot

STREAM_PATH = "/api/v1/portfolio/live/stream"
CLOSE_POLICY = 1008  # the server's refusal: the same request would be refused again
DEFAULT_RECONNECTS = RetryPolicy(retries=10, backoff_s=0.2, max_backoff_s=5.0)


@dataclass(frozen=True, slots=True)
class SnapshotFrame:
    account: str
    snapshot: LiveSnapshot


@dataclass(frozen=True, slots=True)
class OrderEvent:
    seq: int
    account: str
    order: Order


@dataclass(frozen=True, slots=True)
class FillEvent:
    seq: int
    account: str
    fill: Fill


@dataclass(frozen=True, slots=True)
class StreamError:
    """The server could not compute the snapshot this time (the stream goes on)."""

    account: str
    detail: str


LiveFrame = SnapshotFrame | OrderEvent | FillEvent | StreamError


async def live_frames(
    ws_url: str,
    headers: Mapping[str, str],
    *,
    account: str | None,
    since: int | None,
    policy: RetryPolicy = DEFAULT_RECONNECTS,
) -> AsyncIterator[LiveFrame]:
    last_seq = since
    failures = 0
    while True:
        query = {k: v for k, v in (("account", account), ("since", last_seq)) if v is not None}
        url = f"{ws_url}?{urlencode(query)}" if query else ws_url
        code, reason = None, ""
        try:
            async with connect(url, additional_headers=dict(headers), max_size=2**24) as socket:
                async for message in socket:
                    frame, seq = _frame(message)
                    if seq is not None:
                        if last_seq is not None and seq <= last_seq:
                            continue  # replayed on resume, already delivered
                        last_seq = seq
                    failures = 0  # this connection worked: a later drop starts a fresh series
                    if frame is not None:
                        yield frame
                code, reason = socket.close_code, socket.close_reason or ""
        except InvalidStatus as exc:
            raise StreamRefused(exc.response.status_code, exc.response.reason_phrase) from exc
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, "")
        except (OSError, TimeoutError, InvalidHandshake):
            pass  # not up (yet): try again below
        if code == CLOSE_POLICY:
            raise StreamRefused(code, reason)
        wait = policy.wait_s(failures, None)
        if wait is None:
            raise TransportFailed(f"live stream: no connection after {failures} attempts")
        failures += 1
        await retrying.pause(wait)


def _frame(message: str | bytes) -> tuple[LiveFrame | None, int | None]:
    """The typed frame and its event seq (a frame of a kind this client does not know is skipped: None)."""
    raw = json.loads(message)
    account = str(raw.get("account", ""))
    match raw.get("type"):
        case "snapshot":
            return SnapshotFrame(account, LiveSnapshot.model_validate(raw["data"])), None
        case "error":
            return StreamError(account, str(raw.get("detail", ""))), None
        case "event":
            seq = int(raw["seq"])
            if raw.get("kind") == "order":
                return OrderEvent(seq, account, Order.model_validate(raw["data"])), seq
            if raw.get("kind") == "fill":
                return FillEvent(seq, account, Fill.model_validate(raw["data"])), seq
            return None, seq
    return None, None
