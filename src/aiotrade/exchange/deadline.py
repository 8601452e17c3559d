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

and the retry loop should neither start an attempt nor sleep past ``deadline.remaining()``. The pool makes its
deadlines with ``started=False``: the clock starts when the read's first request leaves the limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import ccxt.async_support as ccxt

T = TypeVar("T")

DEFAULT_READ_DEADLINE_S = 3.0


class NothingSent(ccxt.RequestTimeout):
    """A read's time ran out before its request left (it waited for the limiter): it says nothing about the
    venue, so the breaker gives it no verdict."""


class Deadline:
    """A point on the event loop's clock by which a read must be done. Make it inside the loop.

    ``started=False`` makes a deadline that starts counting at the first ``leaving()`` (the moment the read's
    first request leaves the limiter), so that queueing for the venue's budget — our own doing, bounded by
    the limiter — does not eat the time the venue gets to answer.
    """

    __slots__ = ("_loop", "_sent", "_timeout", "_tracking", "seconds", "when")

    def __init__(self, seconds: float = DEFAULT_READ_DEADLINE_S, *, started: bool = True) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be in the future")
        self._loop = asyncio.get_running_loop()
        self.seconds = seconds
        self.when: float | None = self._loop.time() + seconds if started else None
        self._timeout: asyncio.Timeout | None = None
        # Only a deadline told when requests leave can tell a venue's silence from a wait in the limiter.
        self._tracking = not started
        self._sent = False

    def remaining(self) -> float:
        if self.when is None:
            return self.seconds
        return max(0.0, self.when - self._loop.time())

    def expired(self) -> bool:
        return self.when is not None and self._loop.time() >= self.when

    def leaving(self) -> None:
        """A request of the current attempt is leaving now: start the clock if it was waiting for this."""
        self._sent = True
        if self.when is None:
            self.when = self._loop.time() + self.seconds
            if self._timeout is not None:
                self._timeout.reschedule(self.when)

    @contextlib.asynccontextmanager
    async def bound(self) -> AsyncIterator[None]:
        """Run the body until the deadline; past it the body is cancelled and ``ccxt.RequestTimeout`` raised
        (`NothingSent` if, as far as ``leaving()`` told, no request of this attempt had left).

        An expired deadline raises before the body starts, so nothing is sent.
        """
        if self.expired():
            raise NothingSent(f"no time left of the {self.seconds:g} s read deadline")
        timeout = asyncio.timeout_at(self.when)
        self._timeout, self._sent = timeout, not self._tracking
        try:
            async with timeout:
                yield
        except TimeoutError as exc:
            if timeout.expired():
                kind = ccxt.RequestTimeout if self._sent else NothingSent
                raise kind(f"no answer within the {self.seconds:g} s read deadline") from exc
            raise
        finally:
            self._timeout = None


async def within(call: Callable[[], Awaitable[T]], seconds: float = DEFAULT_READ_DEADLINE_S) -> T:
    """``await call()`` bounded by a fresh `Deadline` of ``seconds``."""
    async with Deadline(seconds).bound():
        return await call()
