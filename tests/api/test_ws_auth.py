"""Who may open the live stream, through a real server (websockets -> uvicorn -> the whole app): the key in
the handshake's Authorization header or a single-use, short-lived ticket, never the key in a URL; the
handshake's Origin its own or a configured one, a foreign one refused before anything is computed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aiotrade.api.auth import origin_allowed
from aiotrade.app import create_app
from aiotrade.config import AuthConfig, HttpConfig
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.support.stack import TEST_API_KEY, TEST_HOSTS, auth_headers, make_key, stack_settings

PATH = "/api/v1/portfolio/live/stream"
TICKETS = "/api/v1/auth/ws-ticket"
ALLOWED_ORIGIN = "https://desk.example"


@dataclass
class Served:
    app: FastAPI
    port: int
    computations: list[str]  # accounts the hub computed a snapshot for

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, query: str = "", **options: Any) -> connect:
        return connect(f"ws://127.0.0.1:{self.port}{PATH}" + (f"?{query}" if query else ""), **options)

    async def ticket(self, key: str = TEST_API_KEY) -> str:
        async with httpx.AsyncClient(base_url=self.http, headers=auth_headers(key)) as client:
            answer = await client.post(TICKETS)
        assert answer.status_code == 200, answer.text
        return answer.json()["ticket"]


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **settings: Any) -> AsyncIterator[Served]:
    """The whole app on uvicorn over a paper exchange; the hub's computations are counted."""
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        app = create_app(stack_settings(paper.url, tmp_path, **settings))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(30):
                while not server.started:
                    assert not task.done(), "the server did not start"
                    await asyncio.sleep(0.01)
            computations: list[str] = []
            hub = app.state.live_hub
            compute = hub._compute  # counted here: a refused handshake must compute nothing

            async def counted(account: str) -> Any:
                computations.append(account)
                return await compute(account)

            hub._compute = counted
            yield Served(app, server.servers[0].sockets[0].getsockname()[1], computations)
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    http = HttpConfig(allowed_hosts=TEST_HOSTS, cors_origins=[ALLOWED_ORIGIN])
    async with serve(tmp_path, http=http, auth=AuthConfig(bootstrap_key=TEST_API_KEY, ticket_ttl_s=1)) as running:
        yield running


async def first_frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def refusal(ws: ClientConnection) -> tuple[int | None, str]:
    """The close code and reason of a handshake that was accepted only to be refused."""
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason or ""


async def test_the_key_in_the_authorization_header_opens_the_stream(served: Served) -> None:
    async with served.ws("account=paper", additional_headers=auth_headers()) as ws:
        assert (await first_frame(ws))["account"] == "paper"
    async with served.ws() as ws:
        code, reason = await refusal(ws)
        assert code == 1008 and reason.startswith("unauthorized")
    async with served.ws(additional_headers=auth_headers("at_" + "n" * 43)) as ws:
        assert (await refusal(ws))[0] == 1008


async def test_the_key_itself_is_never_accepted_in_the_url(served: Served) -> None:
    for query in (f"ticket={TEST_API_KEY}", f"key={TEST_API_KEY}", f"api_key={TEST_API_KEY}", f"token={TEST_API_KEY}"):
        async with served.ws(query) as ws:
            code, reason = await refusal(ws)
            assert code == 1008 and reason.startswith("unauthorized"), query
            assert TEST_API_KEY not in reason
    assert served.computations == []


async def test_a_ticket_opens_one_handshake_once(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http, headers=auth_headers()) as client:
        issued = await client.post(TICKETS)
    assert issued.status_code == 200 and issued.json()["expires_in_s"] == 1
    ticket = issued.json()["ticket"]
    assert ticket.startswith("wt_") and TEST_API_KEY not in issued.text
    async with served.ws(f"ticket={ticket}&account=paper") as ws:
        assert (await first_frame(ws))["type"] in ("snapshot", "error")
    async with served.ws(f"ticket={ticket}&account=paper") as ws:  # used: gone on every replica
        assert await refusal(ws) == (1008, "unauthorized: the key or ticket is not valid")


async def test_a_ticket_is_short_lived(served: Served) -> None:
    ticket = await served.ticket()
    await asyncio.sleep(1.2)  # past its TTL (1 s here; 30 s at most)
    async with served.ws(f"ticket={ticket}") as ws:
        assert (await refusal(ws))[0] == 1008
    assert served.computations == []


async def test_a_ticket_carries_its_keys_accounts_and_dies_with_its_key(served: Served) -> None:
    paper_only = await make_key(served.app, "paper-only", "read", accounts="paper")
    ticket = await served.ticket(paper_only.key)
    async with served.ws(f"ticket={ticket}&account=spare") as ws:  # not on the key (and not configured)
        assert await refusal(ws) == (1008, "forbidden: this API key may not act on this account")

    revoked = await served.ticket(paper_only.key)
    async with httpx.AsyncClient(base_url=served.http, headers=auth_headers()) as client:
        assert (await client.delete("/api/v1/admin/keys/paper-only")).status_code == 200
    served.app.state.authenticator._cache.clear()  # this replica's cache (other replicas: within 5 s)
    async with served.ws(f"ticket={revoked}&account=paper") as ws:
        assert (await refusal(ws))[0] == 1008

    writer = await make_key(served.app, "writer", "trade")  # no read: no ticket either
    async with httpx.AsyncClient(base_url=served.http, headers=auth_headers(writer.key)) as client:
        assert (await client.post(TICKETS)).status_code == 403
    async with served.ws("account=paper", additional_headers=auth_headers(writer.key)) as ws:  # nor a stream
        code, reason = await refusal(ws)
        assert code == 1008 and reason.startswith("forbidden"), reason
    assert served.computations == []


async def test_a_foreign_origin_is_refused_before_anything_is_computed(served: Served) -> None:
    for origin in ("http://evil.example", f"http://127.0.0.1:{served.port + 1}", "null"):
        async with served.ws("account=paper", additional_headers=auth_headers(), origin=origin) as ws:
            assert await refusal(ws) == (1008, "origin not allowed"), origin
    assert served.computations == [] and served.app.state.live_hub.open_streams() == 0
    # A ticket sent from a foreign origin is spent all the same (servers log handshake URLs).
    ticket = await served.ticket()
    async with served.ws(f"ticket={ticket}&account=paper", origin="http://evil.example") as ws:
        assert await refusal(ws) == (1008, "origin not allowed")
    async with served.ws(f"ticket={ticket}&account=paper", origin=f"http://127.0.0.1:{served.port}") as ws:
        assert (await refusal(ws))[0] == 1008
    # Its own origin and a configured one are let in.
    for origin in (f"http://127.0.0.1:{served.port}", ALLOWED_ORIGIN):
        async with served.ws("account=paper", additional_headers=auth_headers(), origin=origin) as ws:
            assert (await first_frame(ws))["account"] == "paper", origin


async def test_a_foreign_host_is_refused_before_the_handshake_is_accepted(served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        rebound = f"ws://evil.example:{served.port}{PATH}"  # DNS rebinding: the name resolves to us
        async with connect(rebound, additional_headers=auth_headers(), host="127.0.0.1", port=served.port):
            pass
    assert refused.value.response.status_code == 403
    ticket = await served.ticket()  # spent by a refused handshake too (its URL is in the server's log)
    with pytest.raises(InvalidStatus):
        async with connect(f"{rebound}?ticket={ticket}", host="127.0.0.1", port=served.port):
            pass
    async with served.ws(f"ticket={ticket}&account=paper") as ws:
        assert (await refusal(ws))[0] == 1008
    assert served.computations == []


def test_an_origin_is_its_own_when_scheme_default_ports_agree() -> None:
    assert origin_allowed("http://localhost:8000", "localhost:8000", [])
    assert origin_allowed("https://api.example", "api.example:443", [])
    assert origin_allowed("http://api.example", "api.example", [])
    assert not origin_allowed("http://api.example:8080", "api.example", [])
    assert not origin_allowed("http://localhost.evil.example", "localhost", [])
    assert not origin_allowed("file://", "localhost", [])
    assert not origin_allowed("http://localhost", None, [])
    assert origin_allowed("https://desk.example", "localhost", ["https://desk.example"])
    assert origin_allowed("http://anything.example", "localhost", ["*"])


async def test_a_handshake_counts_against_its_keys_rate(served: Served) -> None:
    slow = await make_key(served.app, "slow", "read", rate_limit=1)
    async with served.ws("account=paper", additional_headers=auth_headers(slow.key)) as ws:
        assert (await first_frame(ws))["account"] == "paper"
        async with served.ws("account=paper", additional_headers=auth_headers(slow.key)) as again:
            assert await refusal(again) == (1013, "too many requests for this API key")
