"""The one table from ccxt errors to domain errors, and redaction of secrets."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from aiotrade import errors as domain
from aiotrade.exchange.errors import exchange_message, redact, to_domain


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        (ccxt.OrderNotFound("x"), domain.OrderNotFound, 404),
        (ccxt.InsufficientFunds("x"), domain.InsufficientFunds, 422),
        (ccxt.InvalidOrder("x"), domain.OrderRejected, 422),
        (ccxt.BadSymbol("x"), domain.UnknownSymbol, 422),
        (ccxt.AuthenticationError("x"), domain.UpstreamAuthFailed, 502),
        (ccxt.ExchangeError("x"), domain.UpstreamRejected, 502),
        (ccxt.DDoSProtection("x"), domain.UpstreamRateLimited, 503),
        (ccxt.RateLimitExceeded("x"), domain.UpstreamRateLimited, 503),
        (ccxt.OnMaintenance("x"), domain.UpstreamUnavailable, 503),
        (ccxt.RequestTimeout("x"), domain.UpstreamTimeout, 504),
        (ccxt.BadResponse("x"), domain.UpstreamBadResponse, 502),
        (ccxt.NotSupported("x"), domain.NotSupported, 501),
    ],
    ids=lambda v: getattr(v, "__name__", None) or type(v).__name__,
)
def test_each_ccxt_error_maps_to_its_domain_error(exc: Exception, expected: type, status: int) -> None:
    error = to_domain(exc, venue="paper")
    assert type(error) is expected
    assert error.status == status


def test_exchange_message_is_extracted_and_url_dropped() -> None:
    exc = ccxt.BadSymbol(
        "binance GET http://127.0.0.1:9/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef0123 "
        '400 Bad Request {"code":-1121,"msg":"Invalid symbol."}'
    )
    error = to_domain(exc, venue="paper")
    assert "Invalid symbol. (code -1121)" in error.detail
    assert "abcdef0123" not in error.detail
    assert "127.0.0.1" not in error.detail
    assert exchange_message(ccxt.ExchangeError("no json here")) is None


def test_redact_removes_signatures_and_keys() -> None:
    text = (
        "GET /api/v3/account?timestamp=1&signature=deadbeef {'X-MBX-APIKEY': 'key123'} "
        'apiKey=key456 "secret": "s3cr3t"'
    )
    cleaned = redact(text)
    for secret in ("deadbeef", "key123", "key456", "s3cr3t"):
        assert secret not in cleaned


def test_log_lines_and_tracebacks_are_redacted() -> None:
    import io
    import logging

    from aiotrade.log_redaction import RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("aiotrade.test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("GET /api/v3/account?timestamp=1&signature=%s", "cafebabe01")
        try:
            raise ccxt.NetworkError("binance GET http://x/api/v3/order?symbol=BTCUSDT&signature=deadbeef02")
        except ccxt.NetworkError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "cafebabe01" not in text and "deadbeef02" not in text
    assert text.count("signature=[REDACTED]") >= 2  # the message, the exception (and its source line)
