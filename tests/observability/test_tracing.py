"""Tracing on a tiny app: one request makes server, aiohttp (ccxt, signed) and DB spans; nothing exported holds a
signature or a key, while a raw exporter beside it (the control) sees them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from aiotrade.config import PAPER_API_KEY, PAPER_SECRET
from aiotrade.observability.tracing import Tracing, configure_tracing
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.paper.urls import ccxt_config

OUR_KEY = "at_" + secrets.token_urlsafe(32)
SIGNATURE = "feed" + secrets.token_hex(30)


@dataclass
class Traced:
    api: httpx.AsyncClient
    tracing: Tracing
    raw: InMemorySpanExporter
    client: ccxt.binance

    def spans(self) -> list[ReadableSpan]:
        exporter = self.tracing.exporter
        assert isinstance(exporter, InMemorySpanExporter)
        return list(exporter.get_finished_spans())


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Traced]:
    async with PaperExchange(PaperConfig(port=0)) as paper:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'trace.db'}")
        app = make_app(engine)
        tracing = configure_tracing(app, engine, enabled=True, service_name="aiotrade-test", exporter="memory")
        assert tracing is not None
        raw = InMemorySpanExporter()
        tracing.provider.add_span_processor(SimpleSpanProcessor(raw))  # the control: what spans hold unredacted
        # Made after configure_tracing, as the pool's sessions are: the instrumentation hooks session creation.
        session = aiohttp.ClientSession()
        client = ccxt.binance(
            ccxt_config(
                paper.url,
                apiKey=PAPER_API_KEY,
                secret=PAPER_SECRET,
                session=session,
                enableRateLimit=False,
                timeout_on_exit=0,
            )
        )
        app.state.client = client
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://aiotrade.test") as api:
                yield Traced(api, tracing, raw, client)
        finally:
            tracing.shutdown()
            await client.close()
            await session.close()
            await engine.dispose()


def make_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/accounts/{account}/balance")
    async def balance(request: Request, account: str) -> dict[str, Any]:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        answer = await request.app.state.client.fetch_balance()
        return {"account": account, "assets": len(answer["total"])}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"GET https://api.binance.com/api/v3/order?signature={SIGNATURE} for {OUR_KEY}")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal"}, status_code=500)

    app.add_exception_handler(Exception, unexpected)
    return app


def everything_in(spans: list[ReadableSpan]) -> str:
    parts = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
        parts.append(span.status.description or "")
    return "\n".join(parts)


async def test_one_request_makes_server_upstream_and_db_spans_without_any_signature(traced: Traced) -> None:
    response = await traced.api.get(
        "/api/v1/accounts/main/balance", params={"apiKey": OUR_KEY}, headers={"Authorization": f"Bearer {OUR_KEY}"}
    )
    assert response.status_code == 200
    spans = traced.spans()
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    upstream = [s for s in spans if s.kind is SpanKind.CLIENT]
    db = [s for s in spans if (s.attributes or {}).get("db.system.name", (s.attributes or {}).get("db.system"))]
    assert len(server) == 1
    assert (server[0].attributes or {}).get("http.route") == "/api/v1/accounts/{account}/balance"
    assert upstream and db
    trace_id = server[0].context.trace_id
    assert all(s.context.trace_id == trace_id for s in upstream + db)  # one trace for the whole request

    signed_url = traced.client.last_request_url
    signature = signed_url.split("signature=")[1].split("&")[0]
    raw = everything_in(list(traced.raw.get_finished_spans()))
    assert OUR_KEY in raw  # the control: the server span's URL carries it before the processor redacts it
    assert signature not in raw and "signature=[REDACTED]" in raw  # aiohttp's URL is scrubbed where recorded
    exported = everything_in(spans)
    assert signature not in exported
    assert OUR_KEY not in exported
    assert PAPER_API_KEY not in exported
    assert "signature=[REDACTED]" in exported


async def test_an_exception_event_loses_its_signature(traced: Traced) -> None:
    assert (await traced.api.get("/boom")).status_code == 500
    spans = traced.spans()
    events = [e for s in spans for e in s.events if e.name == "exception"]
    assert events
    exported = everything_in(spans)
    assert SIGNATURE not in exported and OUR_KEY not in exported
    assert SIGNATURE in everything_in(list(traced.raw.get_finished_spans()))


def test_tracing_is_off_unless_asked() -> None:
    app = FastAPI()
    assert configure_tracing(app, enabled=False) is None
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


# What the image has: `pip install .` without the tracing extra (FastAPI brings opentelemetry-api alone).
_WITHOUT_THE_EXTRA = """
import sys
for name in ("opentelemetry.sdk", "opentelemetry.instrumentation"):
    sys.modules[name] = None  # as if not installed: any import of it or below raises ImportError
from aiotrade.app import create_app
from aiotrade.config import Settings
app = create_app(Settings())
assert app.state.tracing is None
try:
    Settings(tracing={"enabled": True})
except ValueError as exc:
    print(exc)
else:
    raise SystemExit("tracing was enabled without OpenTelemetry")
"""


def test_the_app_builds_without_the_tracing_extra_and_enabling_it_there_says_what_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "AIOTRADE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_THE_EXTRA], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pip install 'aiotrade[tracing]'" in done.stdout and "tracing" in done.stdout
