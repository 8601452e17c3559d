"""A logging filter that keeps signatures and credentials out of every log line and traceback."""

from __future__ import annotations

import logging

from aiotrade.exchange.errors import redact


class RedactSecrets(logging.Filter):
    """Redacts the formatted message and the traceback (ccxt errors embed signed URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
