"""Retry policies (tenacity).

`read`: for calls that are safe to repeat. Retries transient failures — the NetworkError subtree
(timeouts, unavailability, maintenance, DDoSProtection *and* its sibling RateLimitExceeded) and
unreadable responses — with exponential backoff and full jitter, a bounded number of attempts and an
overall deadline. Never the ExchangeError subtree: the exchange understood and refused.
A `Retry-After` is honoured by the venue's limiter, which holds the next attempt; if the pause
outlasts the deadline we stop at once instead of sleeping past it. A read's `Deadline` (see
`exchange/deadline.py`) bounds it further: no attempt starts and no backoff sleeps past it.

Order placement is never retried here: see `services/orders.py`, which reconciles by client id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import ccxt.async_support as ccxt
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from aiotrade.config import RetryConfig
from aiotrade.exchange.deadline import Deadline
from aiotrade.exchange.limiter import VenueLimiter

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ccxt.RequestTimeout,
    ccxt.ExchangeNotAvailable,  # includes OnMaintenance
    ccxt.DDoSProtection,
    ccxt.RateLimitExceeded,
    ccxt.NetworkError,
    ccxt.BadResponse,  # includes NullResponse: a garbled answer to a read is worth one more look
)
# A bad nonce/timestamp will be just as bad on the next attempt until the clock is resynchronised.
NEVER_RETRIED: tuple[type[Exception], ...] = (ccxt.InvalidNonce, ccxt.ExchangeError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, NEVER_RETRIED)


async def read(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryConfig,
    limiter: VenueLimiter | None = None,
    deadline: Deadline | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, retrying transient ccxt errors within the policy's bounds.

    With a ``deadline``, no attempt starts and no backoff sleeps past it; ``on_retry`` hears each failure that
    is about to be tried again (metrics).
    """

    def pause_outlasts_deadline(state: RetryCallState) -> bool:
        if limiter is None:
            return False
        elapsed = state.seconds_since_start or 0.0
        return elapsed + limiter.pause_remaining() > policy.deadline_s

    def read_deadline_spent(state: RetryCallState) -> bool:
        return deadline is not None and deadline.expired()

    backoff = wait_random_exponential(multiplier=policy.initial_delay_s, max=policy.max_delay_s)

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        return delay if deadline is None else min(delay, deadline.remaining())

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.outcome.failed:
            on_retry(state.outcome.exception())

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=(
            stop_after_attempt(policy.attempts)
            | stop_after_delay(policy.deadline_s)
            | pause_outlasts_deadline
            | read_deadline_spent
        ),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover
