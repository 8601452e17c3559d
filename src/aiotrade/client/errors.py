"""What a call can end in besides its model: the server's problem+json as typed exceptions, or no answer.

Every exception is a `ClientError`. An answer that is an error becomes an `ApiError` subclass chosen by the
problem's type (``urn:aiotrade:problem:<slug>``) and else by its HTTP status; no answer at all (connection
refused or reset, timeout) after the retries is `TransportFailed`. A failed `create_order` carries the
``idempotency_key`` it sent, so the caller can ask again later without risking a second order.
"""

from __future__ import annotations

import email.utils
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from aiotrade.models.risk import Violation

PROBLEM_TYPE_PREFIX = "urn:aiotrade:problem:"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending input as the server names it: ``symbol`` (in ``query``), ``/amount`` (a pointer into the body)."""

    name: str
    detail: str
    location: str | None = None


class ClientError(Exception):
    """Base of everything the client raises."""

    idempotency_key: str | None = None  # set by create_order: ask again with it, never with a new one


class TransportFailed(ClientError):
    """No answer from the server (connection refused or reset, timeout), after every allowed retry."""


class BadAnswer(ClientError):
    """A success status whose body is not the model the operation answers (a proxy's page, a version skew)."""


class StreamRefused(ClientError):
    """The live stream was closed by the server for a reason a reconnect cannot fix (key, scope, account)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"live stream refused ({code}): {reason}")
        self.code = code
        self.reason = reason


class ApiError(ClientError):
    """An error answer. ``type`` is the problem's slug (``risk-rejected``); ``errors`` names offending fields."""

    def __init__(self, status: int, problem: dict[str, object], retry_after: float | None = None) -> None:
        self.status = status
        self.problem = problem
        self.type = _slug(problem.get("type"))
        self.title = str(problem.get("title") or "")
        self.detail = str(problem.get("detail") or self.title or f"HTTP {status}")
        self.instance = _text(problem.get("instance"))
        self.request_id = _text(problem.get("request_id"))
        self.errors = tuple(_field_errors(problem.get("errors")))
        self.retry_after = retry_after
        may_exist = problem.get("order_may_exist")
        self.order_may_exist = may_exist if isinstance(may_exist, bool) else None
        super().__init__(f"{status} {self.type}: {self.detail}")


class InvalidInput(ApiError):
    """400/422: the request was refused as given; ``errors`` says which field and why."""


class RiskRejected(ApiError):
    """The pre-trade risk gate refused the order; ``violations`` lists every rule it breaks."""

    @property
    def violations(self) -> list[Violation]:
        return [Violation(code=e.name, message=e.detail) for e in self.errors]


class OrderRejected(ApiError):
    """The exchange refused the order: nothing was placed."""


class InsufficientFunds(OrderRejected):
    pass


class Unauthorized(ApiError):
    """401: no API key, or one the server does not know."""


class Forbidden(ApiError):
    """403: the key lacks the scope, or may not act on the account."""


class NotFound(ApiError):
    """404: unknown exchange, account, order or path."""


class Conflict(ApiError):
    """409: e.g. the order is already closed, or a request with this Idempotency-Key is still in flight."""


class RateLimited(ApiError):
    """429: this API key's inbound budget is spent; ``retry_after`` says when one more call is let through."""


class ServerError(ApiError):
    """500 or another status the server should not have answered."""


class NotSupported(ApiError):
    """501: the exchange does not offer this."""


class UpstreamError(ApiError):
    """502/504: the exchange failed the server (an error, a bad answer, no answer in time)."""


class Unavailable(ApiError):
    """503: the exchange is unavailable or its circuit is open, or compute capacity is spent; see ``retry_after``."""


_BY_SLUG: dict[str, type[ApiError]] = {
    "risk-rejected": RiskRejected,
    "order-rejected": OrderRejected,
    "insufficient-funds": InsufficientFunds,
    "invalid-input": InvalidInput,
    "unknown-symbol": InvalidInput,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    429: RateLimited,
    501: NotSupported,
    502: UpstreamError,
    503: Unavailable,
    504: UpstreamError,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed exception for an error answer (problem+json or not)."""
    problem = _problem_body(response)
    kind = _BY_SLUG.get(_slug(problem.get("type"))) or _BY_STATUS.get(response.status_code) or ServerError
    return kind(response.status_code, problem, retry_after=retry_after_s(response))


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _problem_body(response: httpx.Response) -> dict[str, object]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    # Not problem+json (a proxy's page, the readiness body): keep what can be said about it.
    return {"title": response.reason_phrase, "detail": response.text[:500]}


def _slug(problem_type: object) -> str:
    text = str(problem_type or "")
    return text.removeprefix(PROBLEM_TYPE_PREFIX) if text.startswith(PROBLEM_TYPE_PREFIX) else text


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _field_errors(errors: object) -> list[FieldError]:
    if not isinstance(errors, list):
        return []
    return [
        FieldError(str(e.get("name", "")), str(e.get("detail", "")), _text(e.get("in")))
        for e in errors
        if isinstance(e, dict)
    ]
