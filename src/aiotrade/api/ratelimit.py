"""Inbound rate limits per API key: GCRA, a bucket of one second's worth of requests refilled continuously.

A key limited to R requests per second may send B = max(1, round(R)) at once after an idle second, then one
every 1/R s. The answer carries the IETF ratelimit-headers draft fields: ``RateLimit-Limit`` (B),
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the bucket is full) and ``RateLimit-Policy``
(``B;w=<window s>``); a refusal adds ``Retry-After``.

`InboundLimiter` is the seam. `LocalInboundLimiter` counts in this process (each replica lets a key send its
full rate). `RedisInboundLimiter` runs the same GCRA in one Lua script on Redis's clock, keyed
``aiotrade:inbound:<key id>``, so a key's limit is one across every replica and worker sharing the Redis.
When Redis is out of reach it counts in-process instead (no error reaches a caller) and tries Redis again
a second later.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from aiotrade.exchange.limiter_redis import REDIS_ERRORS

log = logging.getLogger(__name__)

_EPSILON = 1e-9
_MAX_TRACKED = 10_000  # idle entries are swept past this many keys
KEY_PREFIX = "aiotrade:inbound:"

# KEYS[1]: the key's theoretical arrival time (ms, Redis time). ARGV: interval ms, burst.
# Returns {allowed, ms until the bucket is full, ms until one more is let through}, as strings (Lua numbers
# become integers in replies).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window + 0.000001 then
  return {0, tostring(tat - now), tostring(new_tat - window - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, tostring(new_tat - now), '0'}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int  # requests the bucket holds
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until one more request is let through (0 when allowed)
    window_s: float

    def headers(self) -> dict[str, str]:
        fields = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s - _EPSILON)),
            "RateLimit-Policy": f"{self.limit};w={math.ceil(self.window_s - _EPSILON)}",
        }
        if not self.allowed:
            fields["Retry-After"] = str(max(1, math.ceil(self.retry_after_s - _EPSILON)))
        return fields


class InboundLimiter(Protocol):
    async def take(self, key_id: str, per_second: float) -> RateDecision:
        """Count one request of ``key_id`` against ``per_second`` (> 0) and say whether it may go."""
        ...


class LocalInboundLimiter:
    """GCRA in this process: one theoretical arrival time per key; no task, no lock (one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def take(self, key_id: str, per_second: float) -> RateDecision:
        return self.take_now(key_id, per_second)

    def take_now(self, key_id: str, per_second: float) -> RateDecision:
        now = self._clock()
        burst, interval = _shape(per_second)
        window = burst * interval
        tat = max(self._tat.get(key_id, now), now)
        new_tat = tat + interval
        if new_tat - now > window + _EPSILON:
            return _decision(False, burst, interval, ahead_s=tat - now, retry_after_s=new_tat - window - now)
        if len(self._tat) >= _MAX_TRACKED and key_id not in self._tat:
            self._sweep(now)
        self._tat[key_id] = new_tat
        return _decision(True, burst, interval, ahead_s=new_tat - now, retry_after_s=0.0)

    def _sweep(self, now: float) -> None:
        for key_id in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key_id]


class RedisInboundLimiter:
    """The same GCRA in Redis (see the module docstring); one script call per request of a limited key."""

    def __init__(
        self,
        redis: Redis,
        *,
        timeout_s: float = 0.25,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._script = redis.register_script(_GCRA)
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._clock = clock
        self._local = LocalInboundLimiter(clock)
        self._down_until = 0.0
        self.redis_errors = 0  # calls that fell back (for tests and readiness)

    @property
    def shared(self) -> bool:
        """Whether the last word from Redis was an answer (False while counting in-process)."""
        return self._clock() >= self._down_until

    async def take(self, key_id: str, per_second: float) -> RateDecision:
        if not self.shared:
            return self._local.take_now(key_id, per_second)
        burst, interval = _shape(per_second)
        try:
            async with asyncio.timeout(self._timeout_s):
                allowed, ahead_ms, retry_ms = await self._script(
                    keys=[KEY_PREFIX + key_id], args=[repr(interval * 1000), burst]
                )
        except REDIS_ERRORS as exc:
            self.redis_errors += 1
            if self.shared:
                log.warning("inbound rate limits counted in-process: Redis is out of reach (%s)", type(exc).__name__)
            self._down_until = self._clock() + self._retry_s
            return self._local.take_now(key_id, per_second)
        return _decision(
            int(allowed) == 1, burst, interval, ahead_s=float(ahead_ms) / 1000, retry_after_s=float(retry_ms) / 1000
        )


def make_inbound_limiter(redis: Redis | None = None) -> InboundLimiter:
    """Through ``redis`` when there is one (one limit across replicas), else in this process."""
    return RedisInboundLimiter(redis) if redis is not None else LocalInboundLimiter()


def _shape(per_second: float) -> tuple[int, float]:
    """The bucket (requests) and the interval between requests (s) of a rate."""
    return max(1, round(per_second)), 1.0 / per_second


def _decision(allowed: bool, burst: int, interval: float, *, ahead_s: float, retry_after_s: float) -> RateDecision:
    """``ahead_s``: how far the theoretical arrival time is ahead of now (after this request, if allowed)."""
    window = burst * interval
    remaining = 0 if not allowed else max(0, math.floor((window - ahead_s) / interval + _EPSILON))
    return RateDecision(allowed, burst, remaining, ahead_s, retry_after_s, window)
