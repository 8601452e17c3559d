"""Who caused what we are doing now: the request id and API key id, carried in a contextvar.

The API sets it for each request; the store writes it on every audit row; logs carry the request id.
Background jobs run without one (both None).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    request_id: str | None = None
    api_key_id: str | None = None


NOBODY = Caller()
_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("aiotrade_caller", default=NOBODY)


def current_caller() -> Caller:
    """Who is calling: the API key set for this request, and its request id (from the request-id middleware
    when the caller was set without one)."""
    caller = _caller.get()
    if caller.request_id is None:
        from aiotrade.observability.logs import current_request_id  # the middleware's own contextvar

        request_id = current_request_id()
        if request_id is not None:
            return Caller(request_id=request_id, api_key_id=caller.api_key_id)
    return caller


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _caller.set(caller)


def reset_caller(token: contextvars.Token[Caller]) -> None:
    _caller.reset(token)
