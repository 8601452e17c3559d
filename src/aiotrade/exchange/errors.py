"""The ccxt exception tree mapped to domain errors, in one table.

ccxt messages embed the request URL and the raw response body; a signed GET carries its signature
in the URL. Only the exchange's own message (`msg`) reaches a client, and only after `redact`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable
from typing import TypeVar

import ccxt.async_support as ccxt

from aiotrade import errors as domain

T = TypeVar("T")

# Most specific first: the first class in the exception's MRO that appears here wins.
_TABLE: dict[type[Exception], type[domain.DomainError]] = {
    ccxt.OrderNotFound: domain.OrderNotFound,
    ccxt.InsufficientFunds: domain.InsufficientFunds,
    ccxt.InvalidOrder: domain.OrderRejected,
    ccxt.BadSymbol: domain.UnknownSymbol,
    ccxt.NotSupported: domain.NotSupported,
    ccxt.AuthenticationError: domain.UpstreamAuthFailed,
    ccxt.PermissionDenied: domain.UpstreamAuthFailed,
    ccxt.AccountSuspended: domain.UpstreamAuthFailed,
    ccxt.BadRequest: domain.UpstreamRejected,
    ccxt.ExchangeError: domain.UpstreamRejected,
    ccxt.DDoSProtection: domain.UpstreamRateLimited,
    ccxt.RateLimitExceeded: domain.UpstreamRateLimited,
    ccxt.RequestTimeout: domain.UpstreamTimeout,
    ccxt.ExchangeNotAvailable: domain.UpstreamUnavailable,
    ccxt.NetworkError: domain.UpstreamUnavailable,
    ccxt.BadResponse: domain.UpstreamBadResponse,
    ccxt.BaseError: domain.UpstreamError,
}

_CLOCK_REFUSAL = re.compile(r'"code"\s*:\s*-1021\b')
_SECRET_PATTERNS = (
    re.compile(r"(signature=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^&\s\"',}]+", re.IGNORECASE),
    re.compile(r"((?:api[_-]?key|apiKey|secret|password)['\"]?\s*[:=]\s*['\"]?)[^&\s\"',}]+", re.IGNORECASE),
)


def redact(text: str) -> str:
    """Remove signatures and credentials from a message before it is logged or shown."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[REDACTED]", text)
    return text


def exchange_message(exc: BaseException) -> str | None:
    """The exchange's own message from a ccxt error (`{"code":…,"msg":…}` in the body), redacted."""
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start : text.rfind("}") + 1])
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("msg"), str):
            code = body.get("code")
            return redact(f"{body['msg']} (code {code})" if code is not None else body["msg"])
    return None


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed non-idempotent call may still have taken effect.

    Only the ExchangeError subtree is the exchange saying "no"; timeouts, dropped connections,
    5xx, 429s and garbled answers (binance -1006/-1007: "execution status unknown") are not. A
    duplicate-client-id refusal means an order with our id exists, so it is not a "no" either.
    """
    if isinstance(exc, ccxt.DuplicateOrderId) or "duplicate order" in str(exc).lower():
        return True
    if isinstance(exc, ccxt.InvalidNonce):  # the exchange refused a stale or early timestamp
        return False
    return not isinstance(exc, ccxt.ExchangeError)


def domain_class(exc: ccxt.BaseError) -> type[domain.DomainError]:
    """The domain error class a ccxt exception maps to (its ``slug`` is the metrics outcome)."""
    for klass in type(exc).__mro__:
        target = _TABLE.get(klass)
        if target is not None:
            return target
    return domain.UpstreamError  # pragma: no cover - every ccxt error derives from BaseError


def is_clock_refusal(exc: BaseException) -> bool:
    """The venue refused a request for its timestamp (binance -1021: outside recvWindow, or ahead of its clock).

    It is a refusal before anything was done, so the request may be sent again once the clock offset is fresh.
    """
    return isinstance(exc, ccxt.InvalidNonce) or (
        isinstance(exc, ccxt.BaseError) and _CLOCK_REFUSAL.search(str(exc)) is not None
    )


def to_domain(exc: ccxt.BaseError, *, venue: str) -> domain.DomainError:
    """The domain error for a ccxt exception; the original stays reachable as ``__cause__``."""
    target = domain_class(exc)
    message = exchange_message(exc)
    detail = f"{venue}: {target.title.lower()}" + (f": {message}" if message else "")
    return target(detail, retry_after_s=getattr(exc, "retry_after_s", None))


async def mapped(call: Awaitable[T], *, venue: str) -> T:
    """Await ``call`` and re-raise any ccxt error as its domain error."""
    try:
        return await call
    except ccxt.BaseError as exc:
        raise to_domain(exc, venue=venue) from exc
