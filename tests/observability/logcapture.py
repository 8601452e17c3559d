"""Run `configure_logging` for one test with standard error captured, and put the previous set-up back after."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from aiotrade.observability.logs import LogFormat, configure_logging

_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass
class Captured:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (fails the test if one is not)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@contextlib.contextmanager
def captured_logs(level: str = "INFO", fmt: LogFormat = "json") -> Iterator[Captured]:
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {name: _logger_state(logging.getLogger(name)) for name in _UVICORN}
    saved_structlog = structlog.get_config()
    captured = Captured()
    # Swapped for the whole block: a handler binds sys.stderr when configured, also by uvicorn.Config.
    real_stderr, sys.stderr = sys.stderr, captured.stream
    try:
        configure_logging(level, fmt)
        yield captured
    finally:
        sys.stderr = real_stderr
        for handler in root.handlers:
            if handler not in saved_root[0]:
                handler.close()
        root.handlers[:], _ = saved_root
        root.setLevel(saved_root[1])
        for name, (handlers, level_no, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.level, logger.propagate = handlers, level_no, propagate
        structlog.configure(**saved_structlog)


def _logger_state(logger: logging.Logger) -> tuple[list[logging.Handler], int, bool]:
    return logger.handlers[:], logger.level, logger.propagate
