"""One formatter for every logger: structlog's, the stdlib's, uvicorn's (through a real uvicorn), ccxt's; redacted."""

from __future__ import annotations

import asyncio
import logging
import secrets

import ccxt.async_support as ccxt
import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI

from aiotrade.config import PAPER_API_KEY, PAPER_SECRET
from aiotrade.observability.logs import (
    LogFormat,
    current_request_id,
    reset_request_id,
    set_request_id,
    uvicorn_log_config,
)
from aiotrade.observability.redaction import SECRET_KEYS, might_hold_secret, redact_text
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.paper.urls import ccxt_config
from tests.observability.logcapture import Captured, captured_logs

SIGNATURE = "5f2b" + secrets.token_hex(30)
API_KEY = "at_" + secrets.token_urlsafe(32)
TICKET = "wt_" + secrets.token_urlsafe(24)
MESSAGE = f"GET https://api.binance.com/api/v3/account?timestamp=1&signature={SIGNATURE} failed for key {API_KEY}"


def _fail() -> None:
    raise RuntimeError(MESSAGE)


def _assert_clean(captured: Captured, fmt: LogFormat) -> None:
    assert SIGNATURE not in captured.text
    assert API_KEY not in captured.text
    assert "signature=[REDACTED]" in captured.text
    if fmt == "json":
        captured.records()  # every line parses


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_an_exception_carrying_a_signature_and_an_api_key_is_redacted_on_every_logger(fmt: LogFormat) -> None:
    with captured_logs("INFO", fmt) as captured:
        try:
            _fail()
        except RuntimeError:
            structlog.get_logger("aiotrade.native").exception("native failure", detail=MESSAGE)
            logging.getLogger("aiotrade.stdlib").exception("stdlib failure: %s", MESSAGE)
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        logging.getLogger("sqlalchemy.pool").warning("connection %s dropped", MESSAGE)
    _assert_clean(captured, fmt)
    assert captured.text.count("Traceback (most recent call last)") == 3
    for name in ("aiotrade.native", "aiotrade.stdlib", "uvicorn.error", "sqlalchemy.pool"):
        assert name in captured.text
    if fmt == "json":
        by_logger = {record["logger"]: record for record in captured.records()}
        assert by_logger["uvicorn.error"]["level"] == "error"
        assert "RuntimeError" in by_logger["uvicorn.error"]["exception"]
        assert by_logger["aiotrade.native"]["detail"].endswith("[REDACTED]")


def test_without_the_formatter_the_same_record_would_leak() -> None:
    # The control: a stock formatter writes the secrets, so the test above is looking at the right thing.
    try:
        _fail()
    except RuntimeError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, (type(exc), exc, exc.__traceback__))
    text = logging.Formatter().format(record)
    assert SIGNATURE in text and API_KEY in text


@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_uvicorn_relogging_an_unhandled_exception_goes_through_the_same_redaction(fmt: LogFormat) -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        _fail()

    with captured_logs("INFO", fmt) as captured:
        # Given as uvicorn's log_config, as the serve command does: uvicorn applies it itself.
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=uvicorn_log_config("INFO", fmt))
        async with _served(config) as url, httpx.AsyncClient() as client:
            response = await client.get(f"{url}/boom", params={"signature": SIGNATURE}, headers={"X-Key": API_KEY})
        assert response.status_code == 500
    _assert_clean(captured, fmt)
    assert "Exception in ASGI application" in captured.text
    assert "Traceback (most recent call last)" in captured.text
    assert "/boom?signature=[REDACTED]" in captured.text  # uvicorn's own access line
    if fmt == "json":
        loggers = {record["logger"] for record in captured.records()}
        assert {"uvicorn.error", "uvicorn.access"} <= loggers


async def test_ccxt_debug_lines_of_signed_requests_lose_their_signature_and_api_key() -> None:
    raw = _RawMessages()
    ccxt_logger = logging.getLogger("ccxt")
    ccxt_logger.addHandler(raw)
    try:
        with captured_logs("DEBUG", "json") as captured:
            async with PaperExchange(PaperConfig(port=0)) as paper:
                client = ccxt.binance(
                    ccxt_config(paper.url, apiKey=PAPER_API_KEY, secret=PAPER_SECRET, timeout_on_exit=0)
                )
                try:
                    await client.fetch_balance()
                finally:
                    await client.close()
    finally:
        ccxt_logger.removeHandler(raw)
    signed = [m for m in raw.messages if "signature=" in m]
    assert signed and PAPER_API_KEY in signed[0]  # the control: ccxt did write both
    signature = signed[0].split("signature=")[1].split()[0].split("&")[0].rstrip(",")
    assert signature not in captured.text
    assert PAPER_API_KEY not in captured.text
    assert any(record["logger"].startswith("ccxt") for record in captured.records())


def test_lines_below_the_level_are_never_built() -> None:
    class Costly:
        rendered = 0

        def __repr__(self) -> str:
            Costly.rendered += 1
            return "costly"

    with captured_logs("WARNING", "json") as captured:
        structlog.get_logger("aiotrade.quiet").info("hidden", value=Costly())
        logging.getLogger("aiotrade.quiet").info("hidden %r", Costly())
        structlog.get_logger("aiotrade.quiet").warning("shown", value=Costly())
    assert [record["event"] for record in captured.records()] == ["shown"]
    assert Costly.rendered == 1


def test_the_request_id_is_on_every_line_while_bound_and_only_then() -> None:
    with captured_logs("INFO", "json") as captured:
        token = set_request_id("req-42")
        assert current_request_id() == "req-42"
        structlog.get_logger("aiotrade.a").info("inside")
        logging.getLogger("uvicorn.error").info("inside too")
        reset_request_id(token)
        structlog.get_logger("aiotrade.a").info("outside")
    records = captured.records()
    assert [r.get("request_id") for r in records] == ["req-42", "req-42", None]
    assert current_request_id() is None


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("https://x/api/v3/order?symbol=BTCUSDT&signature=abcdef0123&recvWindow=5000", "abcdef0123"),
        ("{'X-MBX-APIKEY': 'binance-key-123'}", "binance-key-123"),
        ("apiKey=k123 secret=s456", "k123"),
        ("apiKey=k123 secret=s456", "s456"),
        (f"key {API_KEY} used", API_KEY),
        (f"GET /api/v1/portfolio/live/stream?ticket={TICKET} 101", TICKET),
        (f"Authorization: Bearer {'x' * 20}", "x" * 20),
        ("{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("(b'authorization', b'Bearer tok.en-1')", "tok.en-1"),
    ],
)
def test_redaction_removes_each_kind_of_secret(text: str, secret: str) -> None:
    assert secret not in redact_text(text)
    assert "[REDACTED]" in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/v1/exchanges/{exchange}/ticker 200",
        "format_exception_and_its_very_long_identifier_name_with_more_words",
        "created_at=2025-01-01 updated_at=2025-01-02",
    ],
)
def test_redaction_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_text(text) == text


class _RawMessages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _served:
    """uvicorn serving ``config`` in this loop on a free port; yields its base URL."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(5):
            while not self.server.started:
                assert not self.task.done(), "the server did not start"
                await asyncio.sleep(0.005)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


def test_every_secret_key_name_makes_a_line_take_the_redacting_path() -> None:
    # The renderer redacts only lines that might hold a secret: every secret key name must say it might.
    assert all(might_hold_secret(name) and might_hold_secret(name.upper().replace("_", "-")) for name in SECRET_KEYS)
    with captured_logs("INFO", "json") as captured:
        structlog.get_logger("aiotrade.keys").info("credentials", **dict.fromkeys(SECRET_KEYS, "s3cr3t-value"))
    (record,) = captured.records()
    assert all(record[name] == "[REDACTED]" for name in SECRET_KEYS)
