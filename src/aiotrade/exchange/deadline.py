"""A deadline for one read: the whole time it may take, retries, backoff and limiter waits included.

Three bounds meet on a read, each for its own failure:
- ccxt's per-request ``timeout`` (``VenueConfig.timeout_ms``, 10 s by default) bounds one HTTP request. It stays
  the only bound on orders (`send_once`), which must not be cut short by anything else.
- The retry policy (`exchange/retry.py`) bounds attempts and, with ``RetryConfig.deadline_s``, the time after which
  no new attempt starts; it never interrupts an attempt in flight.
- A `Deadline` (3 s by default) bounds the read as a whole: it is made once per read, *before* the retry loop, and
  each attempt runs under ``deadline.bound()``, which cancels the attempt when the read's time is up and raises
  ``ccxt.RequestTimeout`` (so the error table maps it to 504 and the breaker counts a timeout). A venue that
  accepts connections and never answers therefore holds a request for the deadline, not for ccxt's 10 s times
  the attempts.

Composition, innermost last (the breaker must see the timeout, so the bound sits inside its guard)::

    deadline = Deadline(settings.read_deadline_s)
    async def attempt() -> T:
        async with breaker.guard(), deadline.bound():
            return await call(client)
    await retry.read(attempt, policy=..., limiter=..., stop_when=deadline.expired)

and the retry loop should neither start an attempt nor sleep past ``deadline.remaining()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import ccxt.async_support as ccxt

T = TypeVar("T")

DEFAULT_READ_DEADLINE_S = 3.0


class Deadline:
    """An absolute point on the event loop's clock by which a read must be done. Make it inside the loop."""

    __slots__ = ("_loop", "seconds", "when")

    def __init__(self, seconds: float = DEFAULT_READ_DEADLINE_S) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be in the future")
        self._loop = asyncio.get_running_loop()
        self.seconds = seconds
        self.when = self._loop.time() + seconds

    def remaining(self) -> float:
        return max(0.0, self.when - self._loop.time())

    def expired(self) -> bool:
        return self._loop.time() >= self.when

    @contextlib.asynccontextmanager
    async def bound(self) -> AsyncIterator[None]:
        """Run the body until the deadline; past it the body is cancelled and ``ccxt.RequestTimeout`` raised.

        An expired deadline raises before the body starts, so nothing is sent.
        """
        if self.expired():
            raise ccxt.RequestTimeout(f"no time left of the {self.seconds:g} s read deadline")
        timeout = asyncio.timeout_at(self.when)
        try:
            async with timeout:
                yield
        except TimeoutError as exc:
            if timeout.expired():
                raise ccxt.RequestTimeout(f"no answer within the {self.seconds:g} s read deadline") from exc
            raise


async def within(call: Callable[[], Awaitable[T]], seconds: float = DEFAULT_READ_DEADLINE_S) -> T:
    """``await call()`` bounded by a fresh `Deadline` of ``seconds``."""
    async with Deadline(seconds).bound():
        return await call()
