"""Public market data with TTLs and single-flight, in-process and (when configured) in Redis.

Promises of ``MarketCache.get_or_fetch(key, ttl_s, fetch, encode=, decode=)``:
- a value younger than ``ttl_s`` is answered without a request, with its age (for an ``Age`` header);
- concurrent identical reads in one process join one upstream request (one in-flight task per key);
- across processes sharing a Redis, the first to miss takes a short lock per key, fetches and stores the value;
  the others poll for it with backoff (bounded); if the holder dies its lock expires and another one fetches;
- ``ttl_s == 0``: nothing is kept, but identical reads in flight together still join;
- errors are never cached: joined callers share the one failure, the next call fetches again;
- Redis out of reach: in-process only, no error to callers; Redis is tried again a second later;
- ``enabled=False``: every call fetches (no caching, no joining).
Values are shared across processes only when ``encode``/``decode`` are given; in-process the object is kept.

``answer_age()`` collects, for one HTTP answer, the age of the oldest cached value it was built from (the
``Age`` header); every look-up is counted in ``aiotrade_cache_requests_total`` by kind and result.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from redis.asyncio import Redis

from aiotrade.config import CacheConfig
from aiotrade.exchange.limiter_redis import REDIS_ERRORS
from aiotrade.observability.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["fetched", "memory", "joined", "shared", "shared-joined", "uncached"]

_HEADER = struct.Struct(">d")  # the wall-clock time the value was fetched, ahead of its bytes
# Compare-and-delete: only the holder releases its lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# What each source is, for the metric: answered without a request, fetched by us, or waited for another's fetch.
_RESULT: dict[str, str] = {
    "fetched": "miss",
    "memory": "hit",
    "shared": "hit",
    "joined": "joined",
    "shared-joined": "joined",
    "uncached": "miss",
}


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    value: T
    age_s: float
    source: Source


@dataclass(slots=True)
class CacheStats:
    hits: int = 0  # answered from this process's memory
    shared_hits: int = 0  # answered from Redis (another process fetched it)
    misses: int = 0  # fetched upstream by this process
    joined: int = 0  # joined a fetch in flight in this process
    shared_joined: int = 0  # waited for another process's fetch and got its value
    uncached: int = 0  # the cache is off
    errors: int = 0  # fetches that failed (never cached)
    redis_errors: int = 0

    def snapshot(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class AnswerAge:
    """The age of the oldest cached value one answer was built from (None: nothing came through the cache)."""

    seconds: float | None = None

    def note(self, age_s: float) -> None:
        self.seconds = age_s if self.seconds is None else max(self.seconds, age_s)

    def header(self) -> str | None:
        """The ``Age`` header's value: whole seconds (RFC 9111), or None when no cached value was used."""
        return None if self.seconds is None else str(math.floor(max(0.0, self.seconds)))


_AGE: contextvars.ContextVar[AnswerAge | None] = contextvars.ContextVar("aiotrade_answer_age", default=None)


@contextlib.contextmanager
def answer_age() -> Iterator[AnswerAge]:
    """Collect the age of the cached values read in this block (tasks started inside it included)."""
    age = AnswerAge()
    token = _AGE.set(age)
    try:
        yield age
    finally:
        _AGE.reset(token)


@dataclass(slots=True)
class _Entry:
    value: Any
    fetched_at: float  # wall clock, so that its age means the same in every process


class MarketCache:
    """One per process (created in the lifespan next to the pool); ``redis`` shares it between processes."""

    def __init__(
        self,
        *,
        redis: Redis | None = None,
        enabled: bool = True,
        namespace: str = "aiotrade:cache",
        lock_ttl_s: float = 3.0,
        max_entries: int = 10_000,
        op_timeout_s: float = 0.25,
        redis_retry_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = enabled
        self.stats = CacheStats()
        self._redis = redis
        self._namespace = namespace
        self._lock_ttl_s = lock_ttl_s
        self._max_entries = max_entries
        self._op_timeout_s = op_timeout_s
        self._redis_retry_s = redis_retry_s
        self._clock = clock
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._flights: dict[str, asyncio.Task[tuple[_Entry, Source]]] = {}
        self._redis_down_until = 0.0
        self._release = redis.register_script(_RELEASE) if redis is not None else None

    @classmethod
    def from_settings(cls, settings: CacheConfig, *, redis: Redis | None = None) -> MarketCache:
        return cls(
            redis=redis, enabled=settings.enabled, lock_ttl_s=settings.lock_ttl_s, max_entries=settings.max_entries
        )

    @property
    def mode(self) -> Literal["off", "memory", "shared", "degraded"]:
        """``degraded``: Redis configured but out of reach (in-process only for now): for ``/readyz``."""
        if not self.enabled:
            return "off"
        if self._redis is None:
            return "memory"
        return "degraded" if self._clock() < self._redis_down_until else "shared"

    async def get_or_fetch(
        self,
        key: str,
        ttl_s: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        encode: Callable[[T], bytes] | None = None,
        decode: Callable[[bytes], T] | None = None,
        kind: str = "other",
    ) -> Cached[T]:
        """The value of ``key`` no older than ``ttl_s``, fetched at most once for all concurrent callers.

        ``kind`` (ticker, orderbook, ...) labels the metric; the answer's age is noted for ``answer_age()``.
        """
        found = await self._get_or_fetch(key, ttl_s, fetch, encode, decode)
        CACHE_REQUESTS.labels(kind, _RESULT[found.source]).inc()
        if found.source != "uncached":
            age = _AGE.get()
            if age is not None:
                age.note(found.age_s)
        return found

    async def _get_or_fetch(
        self,
        key: str,
        ttl_s: float,
        fetch: Callable[[], Awaitable[T]],
        encode: Callable[[T], bytes] | None,
        decode: Callable[[bytes], T] | None,
    ) -> Cached[T]:
        if not self.enabled:
            self.stats.uncached += 1
            return Cached(await fetch(), 0.0, "uncached")
        if ttl_s > 0:
            entry = self._memory.get(key)
            if entry is not None:
                age = self._clock() - entry.fetched_at
                if age < ttl_s:
                    self.stats.hits += 1
                    return Cached(entry.value, max(0.0, age), "memory")
        flight = self._flights.get(key)
        if flight is not None:
            self.stats.joined += 1
            entry, _ = await asyncio.shield(flight)
            return Cached(entry.value, max(0.0, self._clock() - entry.fetched_at), "joined")
        task = asyncio.get_running_loop().create_task(self._load(key, ttl_s, fetch, encode, decode))
        self._flights[key] = task
        task.add_done_callback(lambda done: self._landed(key, done))
        entry, source = await asyncio.shield(task)
        return Cached(entry.value, max(0.0, self._clock() - entry.fetched_at), source)

    def clear(self) -> None:
        """Forget this process's values (not the shared ones)."""
        self._memory.clear()

    # ----- one load per key ------------------------------------------------------------------------

    async def _load(
        self,
        key: str,
        ttl_s: float,
        fetch: Callable[[], Awaitable[Any]],
        encode: Callable[[Any], bytes] | None,
        decode: Callable[[bytes], Any] | None,
    ) -> tuple[_Entry, Source]:
        shared = ttl_s > 0 and encode is not None and decode is not None and self._redis_usable()
        if not shared:
            return self._keep(key, ttl_s, await self._fetch(fetch)), "fetched"
        assert encode is not None and decode is not None
        value_key, lock_key = self._keys(key)
        token = secrets.token_hex(8)
        deadline = self._clock() + self._lock_ttl_s + 0.5
        delay, waited = 0.002, False
        while True:
            try:
                found, holder_ttl_ms = await self._peek(value_key, lock_key)
                if found is not None and self._clock() - found[0] < ttl_s:
                    entry = _Entry(decode(found[1]), found[0])
                    if waited:  # another process was fetching it: we joined its request
                        self.stats.shared_joined += 1
                        return self._keep(key, ttl_s, entry), "shared-joined"
                    self.stats.shared_hits += 1
                    return self._keep(key, ttl_s, entry), "shared"
                if holder_ttl_ms <= 0 and await self._take_lock(lock_key, token):
                    break  # ours to fetch
            except REDIS_ERRORS as exc:
                self._redis_lost(exc)
                return self._keep(key, ttl_s, await self._fetch(fetch)), "fetched"
            if self._clock() > deadline:
                # The holder is slow or stuck: fetch ourselves rather than keep the caller waiting.
                return self._keep(key, ttl_s, await self._fetch(fetch)), "fetched"
            await asyncio.sleep(delay)
            delay, waited = min(delay * 2, 0.05), True
        try:
            entry = await self._fetch(fetch)
            with contextlib.suppress(*REDIS_ERRORS):
                await self._store(value_key, entry, encode(entry.value), ttl_s)
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._redis_call(self._release(keys=[lock_key], args=[token]))  # type: ignore[misc]
        return self._keep(key, ttl_s, entry), "fetched"

    async def _fetch(self, fetch: Callable[[], Awaitable[Any]]) -> _Entry:
        try:
            value = await fetch()
        except BaseException:
            self.stats.errors += 1
            raise
        self.stats.misses += 1
        return _Entry(value, self._clock())

    def _keep(self, key: str, ttl_s: float, entry: _Entry) -> _Entry:
        if ttl_s > 0:
            self._memory[key] = entry
            self._memory.move_to_end(key)
            while len(self._memory) > self._max_entries:
                self._memory.popitem(last=False)
        return entry

    def _landed(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: joined callers got it; nobody is left to be told twice

    # ----- Redis ----------------------------------------------------------------------------------------

    def _keys(self, key: str) -> tuple[str, str]:
        tag = key.replace("{", "(").replace("}", ")")
        return f"{self._namespace}:{{{tag}}}:v", f"{self._namespace}:{{{tag}}}:lock"

    async def _peek(self, value_key: str, lock_key: str) -> tuple[tuple[float, bytes] | None, int]:
        """(fetched at, bytes) of the shared value if any, and the lock's remaining ms (<= 0: nobody holds it)."""
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(value_key)
            pipe.pttl(lock_key)
            raw, holder_ttl_ms = await self._redis_call(pipe.execute())
        if raw is None or len(raw) < _HEADER.size:
            return None, int(holder_ttl_ms)
        return (_HEADER.unpack_from(raw)[0], raw[_HEADER.size :]), int(holder_ttl_ms)

    async def _take_lock(self, lock_key: str, token: str) -> bool:
        assert self._redis is not None
        return bool(await self._redis_call(self._redis.set(lock_key, token, nx=True, px=int(self._lock_ttl_s * 1000))))

    async def _store(self, value_key: str, entry: _Entry, payload: bytes, ttl_s: float) -> None:
        assert self._redis is not None
        remaining_ms = int((ttl_s - (self._clock() - entry.fetched_at)) * 1000)
        if remaining_ms > 0:
            await self._redis_call(
                self._redis.set(value_key, _HEADER.pack(entry.fetched_at) + payload, px=remaining_ms)
            )

    async def _redis_call(self, awaitable: Awaitable[Any]) -> Any:
        async with asyncio.timeout(self._op_timeout_s):
            return await awaitable

    def _redis_usable(self) -> bool:
        return self._redis is not None and self._clock() >= self._redis_down_until

    def _redis_lost(self, exc: BaseException) -> None:
        self.stats.redis_errors += 1
        if self._clock() >= self._redis_down_until:
            log.warning(
                "cache: redis unreachable (%s); in-process only for %.1f s", type(exc).__name__, self._redis_retry_s
            )
        self._redis_down_until = self._clock() + self._redis_retry_s
