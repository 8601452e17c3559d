"""The plain console renderer writes exactly the line structlog's ConsoleRenderer(colors=False) writes."""

from __future__ import annotations

import pytest
import structlog

from aiotrade.observability.logs import PlainConsoleRenderer

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
