"""JSON bodies with a key given twice are refused (400), before anything reads them.

Python's JSON reader keeps the last of duplicate keys, so `{"amount": "0.001", "amount": "5000"}` would
silently become an order for 5000; other readers keep the first. Whichever a proxy or a client library
believed, one of them is wrong about what we will do: we do neither.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class RejectDuplicateKeys:
    """Pure ASGI middleware: buffers JSON request bodies (their size is already bounded), checks them,
    and hands the same bytes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)  # a disconnect: let the app see it
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            json.loads(body, object_pairs_hook=_no_duplicates)
        except DuplicateKey as exc:
            await _refuse(scope, send, exc.key)
            return
        except ValueError:
            pass  # not JSON at all: the app's own validation says so (422)
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


def _replay(messages: list[Message]) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    return receive


async def _refuse(scope: Scope, send: Send, key: str) -> None:
    body = json.dumps(
        {
            "type": "urn:aiotrade:problem:duplicate-json-key",
            "title": "Duplicate key in the JSON body",
            "status": 400,
            "detail": f"the key {key!r} appears more than once in one object",
            "instance": scope.get("path", ""),
            "errors": [{"name": key, "in": "body", "detail": "given more than once"}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
