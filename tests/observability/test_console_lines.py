"""Lines written directly are the lines structlog writes: the plain console renderer against ConsoleRenderer
(colors=False), the access line against the processor chain, in both formats."""

from __future__ import annotations

import json

import pytest
import structlog

from aiotrade.observability.logs import AccessLog, LogFormat, PlainConsoleRenderer
from tests.observability.logcapture import captured_logs

FULL = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


@pytest.mark.parametrize(
    "event",
    [
        {"timestamp": "T", "level": "info", "event": "request", "logger": "aiotrade.access", "status": 200,
         "duration_ms": 1.25, "route": "/api/v1/exchanges/{exchange}/ticker", "request_id": "ab12"},
        {"level": "warning", "event": "an event name longer than thirty characters", "x": "'q'", "n": None},
        {"event": "e"},
        {"event": "", "level": "debug"},
        {"timestamp": "T", "level": "critical", "event": 5, "logger": "x", "logger_name": "y", "k": "", "z": "a=b",
         "t": "tab\there", "spaced": "a b", "quoted": 'q"d', "u": "ünï", "l": [1, "a"], "d": {"k": 1}},
    ],
)  # fmt: skip
def test_plain_console_lines_match_structlogs_renderer(event: dict[str, object]) -> None:
    assert PlainConsoleRenderer(FULL)(None, "info", dict(event)) == FULL(None, "info", dict(event))


def test_a_line_with_a_traceback_goes_to_the_full_renderer() -> None:
    event = {"level": "error", "event": "failed", "exception": "Traceback (most recent call last):\n  boom"}
    assert PlainConsoleRenderer(FULL)(None, "error", dict(event)) == FULL(None, "error", dict(event))
    assert "\nTraceback" in FULL(None, "error", dict(event))


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize(
    ("route", "request_id"),
    [
        ("/api/v1/exchanges/{exchange}/ticker", "0123456789abcdef0123456789abcdef"),
        ("<unmatched>", "gateway-id.1~x+y"),
        ("/api/v1/admin/keys", "abc"),  # "key": the redacting path, same line
        ("/api/v1/x", "mytoken-1"),  # a caller's id with a trigger word: the redacting path
    ],
)
def test_direct_access_lines_are_the_lines_the_processor_chain_writes(
    fmt: LogFormat, route: str, request_id: str
) -> None:
    with captured_logs("INFO", fmt) as captured:
        access = AccessLog()
        access.request("GET", route, 200, 1.25, request_id)
        structlog.get_logger("aiotrade.access").info(
            "request", method="GET", route=route, status=200, duration_ms=1.25, request_id=request_id
        )
    direct, chained = [_without_timestamp(line, fmt) for line in captured.text.splitlines()]
    assert direct == chained


def _without_timestamp(line: str, fmt: LogFormat) -> str:
    if fmt == "json":
        assert json.loads(line)["timestamp"].endswith("Z")
        return line.rsplit(', "timestamp": ', 1)[0]  # the text as written, less its last field
    timestamp, rest = line.split(" ", 1)
    assert timestamp.endswith("Z")
    return rest
