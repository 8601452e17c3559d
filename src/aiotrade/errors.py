"""Domain errors: what can go wrong, said once, with the HTTP status it deserves.

Every error a client can see is one of these; `api/problems.py` renders them as RFC 9457
problem+json. Messages never carry credentials or signatures (see `exchange.errors.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass


class StartupRefused(RuntimeError):
    """A reason not to start at all (a configuration the operator must change). Its message is the whole
    report: `api.middleware.StartupRefusals` gives uvicorn that line instead of a traceback."""


@dataclass(frozen=True, slots=True)
class InvalidParam:
    """One offending input: where it is (`query.symbol`, `body.amount`) and why it was refused."""

    name: str
    reason: str


class DomainError(Exception):
    """Base of every error with a stable type slug, an HTTP status and a client-safe detail."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        invalid_params: list[InvalidParam] | None = None,
        retry_after_s: float | None = None,
        order_may_exist: bool | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.invalid_params = invalid_params or []
        self.retry_after_s = retry_after_s
        self.order_may_exist = order_may_exist


class InvalidInput(DomainError):
    status, slug, title = 422, "invalid-input", "Invalid input"

    @classmethod
    def param(cls, name: str, reason: str) -> InvalidInput:
        return cls(f"{name}: {reason}", invalid_params=[InvalidParam(name, reason)])


class RiskRejected(DomainError):
    """The pre-trade gate refused: every violated rule is listed with its reason code."""

    status, slug, title = 422, "risk-rejected", "Refused by the risk gate"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class UnknownVenue(NotFound):
    slug, title = "unknown-exchange", "Unknown exchange"


class UnknownAccount(NotFound):
    slug, title = "unknown-account", "Unknown account"


class UnknownSymbol(InvalidInput):
    slug, title = "unknown-symbol", "Unknown symbol"


class OrderNotFound(NotFound):
    slug, title = "order-not-found", "Order not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class NotSupported(DomainError):
    status, slug, title = 501, "not-supported", "Not supported by this exchange"


class OrderRejected(DomainError):
    """The exchange refused an order (funds, filters, duplicate id): nothing was placed."""

    status, slug, title = 422, "order-rejected", "Order rejected by the exchange"


class InsufficientFunds(OrderRejected):
    slug, title = "insufficient-funds", "Insufficient funds"


class UpstreamError(DomainError):
    """The exchange failed us; the request may be retried later."""

    status, slug, title = 502, "exchange-error", "Exchange error"


class UpstreamRejected(UpstreamError):
    slug, title = "exchange-rejected", "Exchange rejected the request"


class UpstreamAuthFailed(UpstreamError):
    slug, title = "exchange-authentication-failed", "Exchange rejected the account's credentials"


class UpstreamUnavailable(UpstreamError):
    status, slug, title = 503, "exchange-unavailable", "Exchange unavailable"


class UpstreamRateLimited(UpstreamUnavailable):
    slug, title = "exchange-rate-limited", "Exchange rate limit reached"


class UpstreamTimeout(UpstreamError):
    status, slug, title = 504, "exchange-timeout", "Exchange did not answer in time"


class UpstreamBadResponse(UpstreamError):
    slug, title = "exchange-bad-response", "Exchange sent a response we cannot read"


class CircuitOpen(UpstreamUnavailable):
    """The venue's circuit breaker is open: nothing was sent; ``retry_after_s`` says when a probe may go."""

    slug, title = "exchange-circuit-open", "Exchange circuit open"


class ComputeBusy(DomainError):
    """Every compute slot is busy and the wait queue is full (or the wait timed out): nothing was computed;
    ``retry_after_s`` says when to try again."""

    status, slug, title = 503, "compute-busy", "Computation capacity exhausted"


class ComputeInterrupted(ComputeBusy):
    """The computation was cut off before it finished (shutdown, or a worker process died)."""

    slug, title = "compute-interrupted", "Computation interrupted"


class Unauthorized(DomainError):
    """No API key, or one we do not know (mistyped, revoked, expired ticket): one answer for all of them."""

    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="aiotrade", error="invalid_token"' if invalid_token else 'Bearer realm="aiotrade"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(DomainError):
    """The API key lacks the scope, or may not act on the account (existing or not: the answer is the same)."""

    status, slug, title = 403, "forbidden", "Forbidden"


class TooManyRequests(DomainError):
    """The API key's inbound rate limit is spent; ``retry_after_s`` says when one more request is let through."""

    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: float, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers = dict(headers or {})
