"""One budget per venue for every process sharing a Redis: the bucket of limiter.py, kept by Lua scripts.

The algorithm is limiter.py's leaky bucket (GCRA, stored as a level and the time it was measured), one
Redis hash per limit. One script admits a request against all of its linked limits atomically (the venue's
weight; an order also its account's order counts), on Redis's clock (``TIME``). Every process therefore
sees one bucket and one clock, and the bound ``b + (W + s)·r = headroom × budget`` holds across processes
exactly as within one; the latency allowance ``s`` now also covers the spread of the Redis round trip.
Waiters of one process queue locally and are admitted in batches, so Redis sees one call per batch.

Membership and fallback. Each process heartbeats into a sorted set (every ``heartbeat_s`` and with every
admission). The shared buckets run at ``live / N`` of the budget, N being ``fallback_share`` (how many
processes may share the venue: replicas × workers): the share of a process that is not heard from is held
back, since it may be spending its fallback share locally. A process that loses Redis
- admits nothing until the others have stopped counting it (``stale_s`` after its last answer from Redis),
- then admits from a local bucket of ``budget / N`` that starts full (no burst carried across the switch),
- probes Redis with every heartbeat; when it answers, the same script that makes the process live again
  adds its local level to the shared buckets, and the process is back on the shared budget.
At every moment the rates in use add up to at most the budget's rate and the capacities to its capacity,
so the bound holds through outages, partial partitions and returns (given N is at least the number of
processes). The price of that guarantee: while fewer than N processes are live, they get only live/N.

Pauses: a ``Retry-After`` seen by any process is stored in Redis; every admission checks it and every
heartbeat brings it to the processes that are not admitting, so ``pause_remaining()`` is true everywhere
within ``heartbeat_s``.

Re-sync: the venue's own count (``X-MBX-USED-WEIGHT-1M``) is compared with the shared count for the same
window (kept per bucket, Redis time); the excess beyond in-flight tolerance and the share held back for
absent processes is debited once per window. A process checks locally first, against the count the last
admission returned, so only surprising headers cost a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from aiotrade.exchange.limiter import Limit, LimiterStats, Mode, Priority, Shape, VenueLimiter

log = logging.getLogger(__name__)

# What "Redis is out of reach" looks like: refused or reset connections, timeouts, a server that answers
# with errors (loading, read-only replica, out of memory).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def redis_client(url: str) -> Redis:
    """A client for shared budgets and caches: short timeouts and no retries, so that a lost Redis means the
    in-process fallbacks at once rather than after seconds of waiting."""
    return Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- Live members (heard from within stale_ms) and the share of the budget they may use together.
local function live_share(members, now, stale_ms, replicas)
  redis.call('ZREMRANGEBYSCORE', members, '-inf', now - stale_ms)
  local live = redis.call('ZCARD', members)
  local share = live / replicas
  if share > 1 then share = 1 end
  if share <= 0 then share = 1 / replicas end
  return live, share
end

-- A bucket: level l (units) at time t (ms); used u and external x in fixed window w.
local function load(key, cap, rate, window_ms, now)
  local v = redis.call('HMGET', key, 'l', 't', 'w', 'u', 'x')
  local b = {}
  if v[1] then
    b.l = tonumber(v[1])
    local t = tonumber(v[2])
    if now > t then b.l = math.max(0, b.l - (now - t) * rate) end
    b.w, b.u, b.x = tonumber(v[3]), tonumber(v[4]), tonumber(v[5])
  else
    -- A bucket we know nothing about (first use, Redis restarted, key evicted) starts full.
    b.l, b.w, b.u, b.x, b.new = cap, -1, 0, 0, true
  end
  local w = math.floor(now / window_ms)
  if b.w ~= w then b.w, b.u, b.x = w, 0, 0 end
  return b
end

local function save(key, b, rate, window_ms, now)
  redis.call('HSET', key, 'l', string.format('%.17g', b.l), 't', string.format('%.17g', now),
    'w', string.format('%d', b.w), 'u', string.format('%.17g', b.u), 'x', string.format('%.17g', b.x))
  redis.call('PEXPIRE', key, math.ceil(b.l / rate + 2 * window_ms + 1000))
end

local function heartbeat(members, member, now, stale_ms)
  redis.call('ZADD', members, now, member)
  redis.call('PEXPIRE', members, math.ceil(4 * stale_ms))
end
"""

# KEYS: pause, members, bucket...; ARGV: member, stale_ms, replicas, then per bucket: capacity,
# rate per ms, window ms, fraction of the capacity this priority may fill, cost.
_ACQUIRE = (
    _PRELUDE
    + """
local now = now_ms()
local stale_ms, replicas = tonumber(ARGV[2]), tonumber(ARGV[3])
heartbeat(KEYS[2], ARGV[1], now, stale_ms)
local live, share = live_share(KEYS[2], now, stale_ms, replicas)
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then return {'pause', tostring(paused - now), live, tostring(share)} end
local wait, found = 0, {}
for i = 3, #KEYS do
  local a = 4 + (i - 3) * 5
  local cap, rate = tonumber(ARGV[a]) * share, tonumber(ARGV[a + 1]) * share
  local window_ms, cost = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 4])
  local limit = cap * tonumber(ARGV[a + 3])
  local b = load(KEYS[i], cap, rate, window_ms, now)
  local excess
  if cost > limit then excess = b.l else excess = b.l + cost - limit end
  if excess > 1e-9 then wait = math.max(wait, excess / rate) end
  found[i] = {b, rate, window_ms, cost}
end
if wait > 0 then
  for i = 3, #KEYS do
    if found[i][1].new then save(KEYS[i], found[i][1], found[i][2], found[i][3], now) end
  end
  return {'wait', tostring(wait), live, tostring(share)}
end
local reply = {'ok', '0', live, tostring(share)}
for i = 3, #KEYS do
  local b, rate, window_ms, cost = found[i][1], found[i][2], found[i][3], found[i][4]
  b.l, b.u = b.l + cost, b.u + cost
  save(KEYS[i], b, rate, window_ms, now)
  reply[#reply + 1] = string.format('%d', b.w)
  reply[#reply + 1] = string.format('%.17g', b.u)
end
return reply
"""
)

# KEYS: members, bucket; ARGV: stale_ms, replicas, capacity, rate per ms, window ms, reported units,
# window index of the report, tolerance, headroom × budget, early ms.
_RESYNC = (
    _PRELUDE
    + """
local now = now_ms()
local live, share = live_share(KEYS[1], now, tonumber(ARGV[1]), tonumber(ARGV[2]))
local cap, rate, window_ms = tonumber(ARGV[3]) * share, tonumber(ARGV[4]) * share, tonumber(ARGV[5])
local b = load(KEYS[2], cap, rate, window_ms, now)
local debit = 0
if b.w == tonumber(ARGV[7]) and now - b.w * window_ms >= tonumber(ARGV[10]) then
  -- What absent processes may spend locally is theirs, not a stranger's.
  local excess = tonumber(ARGV[6]) - b.u - b.x - (1 - share) * tonumber(ARGV[9]) - tonumber(ARGV[8])
  if excess > 1e-9 then
    debit = excess
    b.l, b.x = b.l + excess, b.x + excess
    save(KEYS[2], b, rate, window_ms, now)
  end
end
return {tostring(debit), string.format('%d', b.w), string.format('%.17g', b.u)}
"""
)

# KEYS: pause, members, carried bucket...; ARGV: member, stale_ms, replicas, then per bucket: capacity,
# rate per ms, window ms, units carried over from the local fallback.
_HEARTBEAT = (
    _PRELUDE
    + """
local now = now_ms()
local stale_ms, replicas = tonumber(ARGV[2]), tonumber(ARGV[3])
heartbeat(KEYS[2], ARGV[1], now, stale_ms)
local live, share = live_share(KEYS[2], now, stale_ms, replicas)
for i = 3, #KEYS do
  local a = 4 + (i - 3) * 4
  local cap, rate, window_ms = tonumber(ARGV[a]) * share, tonumber(ARGV[a + 1]) * share, tonumber(ARGV[a + 2])
  local b = load(KEYS[i], cap, rate, window_ms, now)
  local carry = tonumber(ARGV[a + 3])
  b.l, b.u = b.l + carry, b.u + carry
  save(KEYS[i], b, rate, window_ms, now)
end
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
return {live, tostring(share), tostring(math.max(0, paused - now))}
"""
)

# KEYS: pause; ARGV: ms. Extends the pause, never shortens it.
_PAUSE = (
    _PRELUDE
    + """
local now = now_ms()
local until_ms = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.17g', until_ms), 'PX', math.ceil(until_ms - now))
return tostring(until_ms - now)
"""
)


class SharedVenueLimiter(VenueLimiter):
    """The venue's budget shared through Redis by every process that uses ``scope`` (the venue's name:
    Binance counts weight per IP, so processes behind one egress share one scope)."""

    _batching = True

    def __init__(
        self,
        redis: Redis,
        budget: float,
        *,
        scope: str,
        fallback_share: int = 1,
        heartbeat_s: float = 0.5,
        stale_s: float = 2.0,
        op_timeout_s: float = 0.5,
        member: str | None = None,
        **local: Any,
    ) -> None:
        if fallback_share < 1:
            raise ValueError("fallback_share must be at least 1")
        if not 0 < heartbeat_s < stale_s:
            raise ValueError("need 0 < heartbeat_s < stale_s")
        local.pop("share", None)
        super().__init__(budget, share=1, **local)
        self._redis = redis
        self._fallback_share = fallback_share
        self._heartbeat_s, self._stale_s, self._op_timeout_s = heartbeat_s, stale_s, op_timeout_s
        self._member = member or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        tag = scope.replace("{", "(").replace("}", ")")
        self._prefix = f"aiotrade:rl:{{{tag}}}:"  # one hash slot per scope: scripts touch several keys
        self._pause_key, self._members_key = self._prefix + "pause", self._prefix + "members"
        self._full = {
            limit.name: Shape.of(limit, headroom=self.headroom, latency_allowance_s=self.latency_allowance_s)
            for limit in self.limits
        }
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._resync_script = redis.register_script(_RESYNC)
        self._heartbeat_script = redis.register_script(_HEARTBEAT)
        self._pause_script = redis.register_script(_PAUSE)
        self._mode: Mode = "shared"
        self._last_ok: float | None = None
        self._live = 0
        self._share_fraction = 1.0 / fallback_share
        self._known: dict[str, tuple[int, float]] = {}  # bucket key -> (window, units counted) at last admission
        self._pending: dict[str, tuple[Limit, int, float]] = {}  # bucket key -> (limit, window, reported)
        self._resyncing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._fallbacks = self._rejoins = self._redis_errors = 0

    @property
    def mode(self) -> Mode:
        return self._mode

    async def start(self) -> None:
        """Join (or, when Redis is out of reach, start in fallback) and keep the heartbeat going."""
        await self._heartbeat()
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="aiotrade-limiter-heartbeat")

    async def close(self) -> None:
        """Stop the heartbeat and say goodbye, so that the others need not hold this process's share."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().close()
        if self._mode == "shared":
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(self._op_timeout_s):
                    await self._redis.zrem(self._members_key, self._member)

    def pause_for(self, seconds: float) -> None:
        """Hold every request of this venue, in every process, for ``seconds``."""
        super().pause_for(seconds)
        if seconds > 0 and self._mode == "shared":
            self._spawn(self._store_pause(seconds))

    def used_ratio(self) -> float:
        """Share of the venue's weight budget every process together used in the current window, as of this
        process's last admission (Redis's count); in fallback, this process's local share."""
        if self._mode != "shared":
            return super().used_ratio()
        weight = self.limits[0]
        known = self._known.get(self._bucket_key(weight, None))
        if known is None or known[0] != math.floor(self._wall() / weight.window_s):
            return 0.0
        return known[1] / self.budget

    def stats(self) -> LimiterStats:
        weight = self._full[self.limits[0].name]
        fraction = self._share_fraction if self._mode == "shared" else 1.0 / self._fallback_share
        return LimiterStats(
            budget=self.budget,
            window_s=self.window_s,
            capacity=weight.capacity * fraction,
            rate_per_second=weight.rate * fraction,
            acquired_units=self._acquired_units,
            requests=self._requests,
            paused_until_monotonic=self._paused_until,
            retry_after_events=self._retry_after_events,
            mode=self._mode,
            share=1.0 / fraction,
            order_requests=self._order_requests,
            resynced_units=self._resynced_units,
            live_processes=self._live,
            fallbacks=self._fallbacks,
            rejoins=self._rejoins,
            redis_errors=self._redis_errors,
        )

    # ----- admission ---------------------------------------------------------------------------------

    async def _try(self, units: float, orders: int, account: str | None, priority: Priority) -> float:
        paused = self.pause_remaining()
        if paused > 0:
            return paused
        if self._mode == "shared":
            items = self._local.applicable(units, orders, account)
            keys = [self._pause_key, self._members_key]
            args: list[Any] = [self._member, self._stale_s * 1000, self._fallback_share]
            for limit, key, cost in items:
                shape = self._full[limit.name]
                keys.append(self._bucket_key(limit, key))
                args += [shape.capacity, shape.rate / 1000, limit.window_s * 1000]
                args += [self._local.fraction(limit, priority), cost]
            try:
                reply = await self._call(self._acquire_script, keys, args)
            except REDIS_ERRORS as exc:
                self._lost(exc)
            else:
                return self._admitted(reply, keys[2:])
        return self._local.try_take(units, orders, account, priority)

    def _admitted(self, reply: list[Any], bucket_keys: Sequence[str]) -> float:
        self._last_ok = self._clock()
        status = _text(reply[0])
        self._live, self._share_fraction = int(reply[2]), float(_text(reply[3]))
        wait_s = float(_text(reply[1])) / 1000
        if status == "pause":
            self._hold_until(self._clock() + wait_s)
            return wait_s
        if status == "wait":
            return wait_s
        for i, key in enumerate(bucket_keys):
            self._known[key] = (int(_text(reply[4 + 2 * i])), float(_text(reply[5 + 2 * i])))
        return 0.0

    def _batch_room(self, priority: Priority) -> float:
        weight = self.limits[0]
        return self._full[weight.name].capacity * self._share_fraction * self._local.fraction(weight, priority) / 2

    # ----- re-sync -------------------------------------------------------------------------------------

    def _observe(self, limit: Limit, account: str | None, reported: float) -> None:
        if self._mode != "shared":
            super()._observe(limit, account, reported)
            return
        key = self._bucket_key(limit, (account or "") if limit.per_account else None)
        window = math.floor(self._wall() / limit.window_s)
        known = self._known.get(key)
        tolerance = self._full[limit.name].tolerance(self.latency_allowance_s)
        if known is not None and known[0] == window and reported <= known[1] + tolerance:
            return  # no more than we admitted ourselves: no round trip
        pending = self._pending.get(key)
        if pending is None or pending[1] != window or pending[2] < reported:
            self._pending[key] = (limit, window, reported)
        if key not in self._resyncing:
            self._resyncing.add(key)
            self._spawn(self._resync(key))

    async def _resync(self, key: str) -> None:
        try:
            while (pending := self._pending.pop(key, None)) is not None:
                limit, window, reported = pending
                shape = self._full[limit.name]
                args = [
                    self._stale_s * 1000,
                    self._fallback_share,
                    shape.capacity,
                    shape.rate / 1000,
                    limit.window_s * 1000,
                    reported,
                    window,
                    shape.tolerance(self.latency_allowance_s),
                    self.headroom * limit.budget,
                    self.latency_allowance_s * 1000,
                ]
                try:
                    reply = await self._call(self._resync_script, [self._members_key, key], args)
                except REDIS_ERRORS as exc:
                    self._lost(exc)
                    return
                debited = float(_text(reply[0]))
                self._known[key] = (int(_text(reply[1])), float(_text(reply[2])))
                if debited > 0:
                    self._resynced_units += debited
                    log.info("venue counted %.2f units more than we admitted: debited (%s)", debited, key)
        finally:
            self._resyncing.discard(key)

    # ----- membership, fallback, pauses ---------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._heartbeat()
            except Exception:  # never let the heartbeat die of a bug: the fallback depends on it
                log.exception("limiter heartbeat failed")

    async def _heartbeat(self) -> None:
        """Say we are alive, learn the pause and the live count; from fallback: rejoin, carrying our level."""
        rejoining = self._mode == "fallback"
        carried = [(limit, key, level) for limit, key, level in self._local.levels() if level > 0] if rejoining else []
        taken_before = dict(self._local.taken)
        try:
            await self._beat(carried)
        except REDIS_ERRORS as exc:
            self._lost(exc)
            return
        if rejoining and self._mode == "fallback":
            fallback = self._local
            self._local = self._local_buckets(1)
            self._mode = "shared"
            self._rejoins += 1
            log.warning("redis reachable again: %s rejoins the shared budget", self._prefix)
            # Admissions that raced with the rejoin are carried too.
            late = [
                (limit, key, fallback.taken.get((limit.name, key), 0.0) - taken_before.get((limit.name, key), 0.0))
                for limit, key, _ in fallback.levels()
            ]
            late = [item for item in late if item[2] > 0]
            if late:
                self._spawn(self._carry(late))

    async def _carry(self, carried: list[tuple[Limit, str | None, float]]) -> None:
        try:
            await self._beat(carried)
        except REDIS_ERRORS as exc:
            self._lost(exc)

    async def _beat(self, carried: list[tuple[Limit, str | None, float]]) -> None:
        keys = [self._pause_key, self._members_key]
        args: list[Any] = [self._member, self._stale_s * 1000, self._fallback_share]
        for limit, key, level in carried:
            shape = self._full[limit.name]
            keys.append(self._bucket_key(limit, key))
            args += [shape.capacity, shape.rate / 1000, limit.window_s * 1000, level]
        reply = await self._call(self._heartbeat_script, keys, args)
        self._last_ok = self._clock()
        self._live, self._share_fraction = int(reply[0]), float(_text(reply[1]))
        pause_ms = float(_text(reply[2]))
        if pause_ms > 0:
            self._hold_until(self._clock() + pause_ms / 1000)

    async def _store_pause(self, seconds: float) -> None:
        try:
            await self._call(self._pause_script, [self._pause_key], [seconds * 1000])
        except REDIS_ERRORS as exc:
            self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        """Redis did not answer: go local, at a safe share, once the others have stopped counting us."""
        self._redis_errors += 1
        if self._mode != "shared":
            return
        now = self._clock()
        # The others count us live until stale_s after our last heartbeat reached Redis; not before then.
        silent_until = now if self._last_ok is None else max(now, self._last_ok + self._stale_s + 0.05)
        self._local = self._local_buckets(self._fallback_share, full_from=silent_until)
        self._mode = "fallback"
        self._fallbacks += 1
        log.warning(
            "redis unreachable (%s): %s falls back to 1/%d of the budget from %.2f s on",
            type(exc).__name__,
            self._prefix,
            self._fallback_share,
            silent_until - now,
        )

    # ----- helpers --------------------------------------------------------------------------------------

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        async with asyncio.timeout(self._op_timeout_s):
            return await script(keys=keys, args=args)

    def _bucket_key(self, limit: Limit, account: str | None) -> str:
        return self._prefix + (f"o:{limit.name}:{account}" if limit.per_account else limit.name)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
