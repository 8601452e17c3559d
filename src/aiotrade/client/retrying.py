"""When a call may be sent again, and how long to wait first.

Three kinds of call:
- ``SAFE`` (reads, pure computations, PUTs that set a whole value): again after no answer, a reset, a
  timeout, or a transient answer (429, 502, 503, 504);
- ``KEYED`` (a create carrying an Idempotency-Key the server replays): as ``SAFE``, and also after a 409 whose
  Retry-After says the same key is still in flight;
- ``UNSAFE`` (anything else that writes): only when the server surely did nothing — the connection was never
  made, the inbound rate limit refused it (429) before any handler ran, or the answer says nothing was sent
  or computed (an open circuit, compute capacity spent).
The wait is exponential backoff with jitter, and never shorter than the server's ``Retry-After``; a
``Retry-After`` longer than ``max_wait_s`` is not slept through: the error goes to the caller at once.
"""

from __future__ import annotations

import enum
import random
from asyncio import sleep
from dataclasses import dataclass

import httpx

from aiotrade.client.errors import ApiError, Conflict

# A 502 that says the exchange refused us (credentials, a rejected request) will say so again.
_NOT_TRANSIENT = frozenset({"exchange-rejected", "exchange-authentication-failed"})
_TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
# Answers that say the request went nowhere: nothing was sent to the exchange, nothing computed.
_NOTHING_DONE = frozenset({"exchange-circuit-open", "compute-busy"})
# Errors raised before a byte of the request left: nothing can have happened on the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class CallKind(enum.Enum):
    SAFE = "safe"
    KEYED = "keyed"
    UNSAFE = "unsafe"


SAFE, KEYED, UNSAFE = CallKind.SAFE, CallKind.KEYED, CallKind.UNSAFE


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` more attempts after the first; waits from ``backoff_s`` doubling up to ``max_backoff_s``."""

    retries: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    max_wait_s: float = 30.0

    def may_resend_after(self, kind: CallKind, failure: httpx.TransportError) -> bool:
        return kind is not UNSAFE or isinstance(failure, _NOT_SENT)

    def may_resend_answer(self, kind: CallKind, error: ApiError) -> bool:
        if error.status == 429 or error.type in _NOTHING_DONE:
            return True  # refused before the route ran, or before anything left
        if kind is UNSAFE:
            return False
        if kind is KEYED and isinstance(error, Conflict) and error.retry_after is not None:
            return True  # the same key still in flight: its answer will be replayed
        return error.status in _TRANSIENT_STATUS and error.type not in _NOT_TRANSIENT

    def wait_s(self, attempt: int, retry_after: float | None) -> float | None:
        """How long to wait before attempt ``attempt + 1`` (0-based), or None: do not retry."""
        if attempt >= self.retries:
            return None
        ceiling = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        backoff = ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter, not secrecy
        if retry_after is None:
            return backoff
        if retry_after > self.max_wait_s:
            return None
        return max(backoff, retry_after)


async def pause(seconds: float) -> None:
    """The wait between attempts (a seam the tests use to see how long the client chose to wait)."""
    await sleep(seconds)
