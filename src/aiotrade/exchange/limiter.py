"""Weight-aware rate limiting before a request leaves: linked limits, orders first, one bound.

The bound. Exchanges count in *fixed* windows (Binance: request weight per IP per minute; orders per
account per 10 s and per day). A leaky bucket of capacity ``b`` draining ``r`` units per second admits at
most ``b + W·r`` units in any interval of ``W`` seconds. Requests do not reach the exchange the instant they
are admitted, though: their delays differ by up to ``s`` seconds (the latency allowance), so a window of the
exchange sees what we admitted in ``W + s`` seconds. Choosing ``b + (W + s)·r = headroom × budget`` can never
overrun the exchange's window, whatever its alignment, while a steady load still uses
``(headroom − burst) · W / (W + s)`` of the budget.

A request costlier than what the bucket may hold is admitted only when the bucket is empty, so one window
can see up to one such cost above the bound: the largest single cost must stay small against the budget
(Binance: exchangeInfo 4 and an account-wide open-orders list 16 of 1,200 units a minute, well inside the
1% burst and the headroom).

Linked limits. One request can count against several limits — an order debits the venue's weight *and* its
account's order counts — and is admitted only when every one of them has room, debiting all at once.

Orders first. Reads may fill the weight bucket only to ``1 − order_reserve`` of its capacity; orders and
cancels may fill all of it. So they never queue behind reads, and when both wait, orders go first. Reads
still get the whole rate while no order waits: the reserve is room, not a slice of the rate.

Shares. A process that shares the venue with processes it cannot coordinate with (``serve --workers N``
without Redis) is built with ``share=N``: rate and capacity are divided, so together they keep the bound.
``limiter_redis.SharedVenueLimiter`` keeps one bucket in Redis for every process instead, under the same
bound, and falls back to a share of this local limiter when Redis is out of reach.

Re-sync. ``observe_usage`` reads what the venue says it counted in its current window (Binance's
``X-MBX-USED-WEIGHT-1M``): when that is more than we admitted in the window — beyond what requests in flight
across a boundary can explain — someone else spends this budget (another client on the IP, a cost table that
under-counts), and the difference is debited so that we slow down.

A ``Retry-After`` from the exchange pauses every request of the venue until it has passed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

Priority = Literal["read", "order"]
Mode = Literal["local", "shared", "fallback"]

DEFAULT_ORDER_RESERVE = 0.1
# Order counts are small integers (50 per 10 s): a 1% burst would not hold one order. A venue table may give a
# limit its own burst (binance's 10 s order limit lets half its window go at once: a burst of orders is normal).
ORDER_BURST = 0.1
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget the venue counts in fixed windows: ``budget`` units per ``window_s`` seconds.

    ``per_account`` limits count orders (one unit per order) for each account; the others count request
    weight in ccxt cost units for the whole venue. ``usage_header`` names the response header in which the
    venue reports its own count for the current window, ``units_per_header_unit`` converts it to ours
    (binance: 1 cost unit = 5 weight, so 0.2).
    """

    name: str
    budget: float
    window_s: float
    burst: float = 0.01
    per_account: bool = False
    usage_header: str | None = None
    units_per_header_unit: float = 1.0

    def __post_init__(self) -> None:
        if self.budget <= 0 or self.window_s <= 0:
            raise ValueError(f"limit {self.name}: budget and window_s must be positive")
        if self.units_per_header_unit <= 0:
            raise ValueError(f"limit {self.name}: units_per_header_unit must be positive")


@dataclass(frozen=True, slots=True)
class Shape:
    """Capacity (units) and drain rate (units per second) of one limit's bucket for one share."""

    capacity: float
    rate: float
    window_s: float

    @classmethod
    def of(cls, limit: Limit, *, headroom: float, latency_allowance_s: float, share: float = 1.0) -> Shape:
        # b + (W + s)·r = headroom × budget: the module docstring's bound.
        capacity = limit.budget * limit.burst
        rate = (headroom * limit.budget - capacity) / (limit.window_s + latency_allowance_s)
        return cls(capacity / share, rate / share, limit.window_s)

    def tolerance(self, latency_allowance_s: float) -> float:
        """Units that can leave in one window and be counted in the next: a burst plus ``s`` of drain."""
        return self.capacity + latency_allowance_s * self.rate


@dataclass(frozen=True, slots=True)
class LimiterStats:
    budget: float
    window_s: float
    capacity: float
    rate_per_second: float
    acquired_units: float
    requests: int
    paused_until_monotonic: float
    retry_after_events: int
    mode: Mode = "local"
    share: float = 1.0
    order_requests: int = 0
    resynced_units: float = 0.0
    live_processes: int = 1
    fallbacks: int = 0
    rejoins: int = 0
    redis_errors: int = 0


class Bucket:
    """A leaky bucket: ``level`` units drain at ``rate`` per second; plus what we admitted in the venue's
    current fixed window (``used``) and what was debited for others (``external``), for re-sync."""

    __slots__ = ("capacity", "external", "level", "not_before", "rate", "t", "used", "window", "window_s")

    def __init__(self, shape: Shape, now: float, *, full_from: float | None = None) -> None:
        self.capacity, self.rate, self.window_s = shape.capacity, shape.rate, shape.window_s
        # A bucket that takes over from another we cannot see (Redis lost) starts full, at ``full_from``.
        self.not_before = full_from if full_from is not None else now
        self.level = shape.capacity if full_from is not None else 0.0
        self.t = self.not_before
        self.window = -1
        self.used = 0.0
        self.external = 0.0

    def wait(self, units: float, fraction: float, now: float) -> float:
        """Seconds until ``units`` fits below ``fraction`` of the capacity (0: it fits now)."""
        if now < self.not_before:
            return self.not_before - now + self._wait_at(units, fraction)
        self._drain(now)
        return self._wait_at(units, fraction)

    def take(self, units: float, now: float, wall: float) -> None:
        self._drain(now)
        self.level += units
        self._roll(wall)
        self.used += units

    def debit(self, units: float, now: float, wall: float, *, ours: bool) -> None:
        """Add ``units`` that left without this bucket's say (ours: carried over; else: someone else's)."""
        self._drain(now)
        self.level += units
        self._roll(wall)
        if ours:
            self.used += units
        else:
            self.external += units

    def resync(self, reported: float, tolerance: float, now: float, wall: float, *, early_s: float) -> float:
        """Debit what the venue counted in its current window beyond ours; returns the units debited."""
        self._roll(wall)
        if wall - self.window * self.window_s < early_s:  # the header may still speak of the last window
            return 0.0
        excess = reported - self.used - self.external - tolerance
        if excess <= _EPSILON:
            return 0.0
        self.debit(excess, now, wall, ours=False)
        return excess

    def current_level(self, now: float) -> float:
        self._drain(now)
        return self.level

    def _wait_at(self, units: float, fraction: float) -> float:
        limit = self.capacity * fraction
        excess = self.level if units > limit else self.level + units - limit
        return excess / self.rate if excess > _EPSILON else 0.0

    def _drain(self, now: float) -> None:
        if now > self.t:
            self.level = max(0.0, self.level - (now - self.t) * self.rate)
            self.t = now

    def _roll(self, wall: float) -> None:
        window = math.floor(wall / self.window_s)
        if window != self.window:
            self.window, self.used, self.external = window, 0.0, 0.0


class LocalBuckets:
    """The buckets of one venue in this process: the weight bucket and one per (order limit, account)."""

    def __init__(
        self,
        limits: Sequence[Limit],
        *,
        headroom: float,
        latency_allowance_s: float,
        order_reserve: float,
        share: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        full_from: float | None = None,
    ) -> None:
        self.limits = tuple(limits)
        self.share = share
        self.latency_allowance_s = latency_allowance_s
        self.order_reserve = order_reserve
        self.shapes = {
            limit.name: Shape.of(limit, headroom=headroom, latency_allowance_s=latency_allowance_s, share=share)
            for limit in limits
        }
        self._clock, self._wall = clock, wall_clock
        self._full_from = full_from
        self._buckets: dict[tuple[str, str | None], Bucket] = {}
        # Units taken since creation, per bucket: what a rejoin must carry over if it raced with admissions.
        self.taken: dict[tuple[str, str | None], float] = {}

    def applicable(self, units: float, orders: int, account: str | None) -> list[tuple[Limit, str | None, float]]:
        """(limit, account key, units) for every limit a request counts against."""
        found: list[tuple[Limit, str | None, float]] = []
        for limit in self.limits:
            if not limit.per_account:
                found.append((limit, None, units))
            elif orders > 0:
                found.append((limit, account or "", float(orders)))
        return found

    def fraction(self, limit: Limit, priority: Priority) -> float:
        return 1.0 - self.order_reserve if priority == "read" and not limit.per_account else 1.0

    def try_take(self, units: float, orders: int, account: str | None, priority: Priority) -> float:
        """Take the request if every limit has room now (returns 0), else the seconds to wait."""
        now = self._clock()
        items = self.applicable(units, orders, account)
        wait = 0.0
        for limit, key, charge in items:
            wait = max(wait, self.bucket(limit, key, now).wait(charge, self.fraction(limit, priority), now))
        if wait > 0:
            return wait
        wall = self._wall()
        for limit, key, charge in items:
            self.bucket(limit, key, now).take(charge, now, wall)
            self.taken[(limit.name, key)] = self.taken.get((limit.name, key), 0.0) + charge
        return 0.0

    def resync(self, limit: Limit, account: str | None, reported_units: float) -> float:
        """Re-sync one bucket from the venue's count. With a share of N, our part of the count is 1/N."""
        now = self._clock()
        shape = self.shapes[limit.name]
        key = (account or "") if limit.per_account else None
        return self.bucket(limit, key, now).resync(
            reported_units / self.share,
            shape.tolerance(self.latency_allowance_s),
            now,
            self._wall(),
            early_s=self.latency_allowance_s,
        )

    def used_ratio(self, limit: Limit, budget: float) -> float:
        """Units of ``limit`` (a venue-wide one) admitted in its current fixed window, over our share of ``budget``."""
        found = self._buckets.get((limit.name, None))
        if found is None or found.window != math.floor(self._wall() / found.window_s):
            return 0.0
        return found.used * self.share / budget

    def levels(self) -> list[tuple[Limit, str | None, float]]:
        """Current level of every bucket in use (what a rejoin carries over into the shared buckets)."""
        now = self._clock()
        by_name = {limit.name: limit for limit in self.limits}
        return [(by_name[name], key, b.current_level(now)) for (name, key), b in self._buckets.items()]

    def bucket(self, limit: Limit, key: str | None, now: float) -> Bucket:
        found = self._buckets.get((limit.name, key))
        if found is None:
            full_from = None if self._full_from is None else max(now, self._full_from)
            found = self._buckets[(limit.name, key)] = Bucket(self.shapes[limit.name], now, full_from=full_from)
        return found


@dataclass(slots=True)
class _Waiter:
    units: float
    orders: int
    future: asyncio.Future[None]


@dataclass(slots=True)
class _Line:
    """Requests of one priority (and, for orders, one account) waiting in arrival order."""

    priority: Priority
    account: str | None
    queue: deque[_Waiter] = field(default_factory=deque)
    pump: asyncio.Task[None] | None = None


class VenueLimiter:
    """One limiter per venue, shared by all of its clients (exchanges count weight per IP): in-process.

    ``share`` divides the budget between processes that cannot coordinate (``serve --workers N``).
    """

    # Waiters admitted together in one attempt: pointless in-process; the shared limiter saves round trips.
    _batching = False

    def __init__(
        self,
        budget: float,
        *,
        window_s: float = 60.0,
        headroom: float = 0.99,
        burst: float = 0.01,
        latency_allowance_s: float = 0.5,
        share: int = 1,
        order_reserve: float = DEFAULT_ORDER_RESERVE,
        order_limits: Sequence[Limit] = (),
        usage_header: str | None = None,
        units_per_header_unit: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if budget <= 0 or window_s <= 0:
            raise ValueError("budget and window_s must be positive")
        if not 0 < burst < headroom <= 1:
            raise ValueError("need 0 < burst < headroom <= 1")
        if latency_allowance_s < 0:
            raise ValueError("latency_allowance_s must not be negative")
        if share < 1:
            raise ValueError("share must be at least 1")
        if not 0 <= order_reserve < 1:
            raise ValueError("order_reserve must be in [0, 1)")
        if any(not limit.per_account for limit in order_limits):
            raise ValueError("order_limits must be per-account limits")
        weight = Limit(
            "weight",
            budget,
            window_s,
            burst=burst,
            usage_header=usage_header,
            units_per_header_unit=units_per_header_unit,
        )
        self.limits: tuple[Limit, ...] = (weight, *order_limits)
        self.budget = budget
        self.window_s = window_s
        self.headroom = headroom
        self.latency_allowance_s = latency_allowance_s
        self.order_reserve = order_reserve
        self.share = share
        self._clock, self._wall = clock, wall_clock
        self._local = self._local_buckets(share)
        shape = self._local.shapes["weight"]
        self.capacity = shape.capacity
        self.rate_per_second = shape.rate
        self._lines: dict[tuple[Priority, str | None], _Line] = {}
        self._paused_until = 0.0
        self._acquired_units = 0.0
        self._requests = 0
        self._order_requests = 0
        self._retry_after_events = 0
        self._resynced_units = 0.0
        self._headers = {limit.usage_header.lower(): limit for limit in self.limits if limit.usage_header}

    @property
    def mode(self) -> Mode:
        """Where the budget is kept: ``local`` (this process, its share), ``shared`` (one budget in Redis) or
        ``fallback`` (Redis out of reach: a safe local share until it returns)."""
        return "local"

    async def start(self) -> None:
        """Nothing to start in-process (the shared limiter starts its heartbeat here)."""

    async def close(self) -> None:
        """Cancel waiters and pumps."""
        for line in self._lines.values():
            if line.pump is not None:
                line.pump.cancel()
            for waiter in line.queue:
                waiter.future.cancel()
            line.queue.clear()
        await asyncio.gather(*(line.pump for line in self._lines.values() if line.pump), return_exceptions=True)

    async def acquire(
        self,
        weight: float | None = None,
        *,
        orders: int = 0,
        account: str | None = None,
        priority: Priority = "read",
    ) -> None:
        """Wait until a request of ``weight`` (ccxt cost units) placing ``orders`` orders on ``account`` may
        leave; honours any pause. ``priority="order"`` for order placement and cancels: they never queue
        behind reads."""
        units = 1.0 if weight is None else float(weight)
        if units < 0 or orders < 0 or not math.isfinite(units):
            raise ValueError("weight and orders must be finite and not negative")
        key = (priority, account if orders else None)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(priority, key[1])
        if not line.queue and not self._batching and await self._try(units, orders, line.account, priority) <= 0:
            self._count(units, priority)
            return
        waiter = _Waiter(units, orders, asyncio.get_running_loop().create_future())
        line.queue.append(waiter)
        if line.pump is None:
            line.pump = asyncio.create_task(self._pump(line), name=f"aiotrade-limiter-{priority}")
        await waiter.future
        self._count(units, priority)

    def pause_for(self, seconds: float) -> None:
        """Hold every request of this venue for ``seconds`` (from a Retry-After header)."""
        if seconds <= 0:
            return
        self._retry_after_events += 1
        self._hold_until(self._clock() + seconds)

    def pause_remaining(self) -> float:
        """Seconds until requests may leave again (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def observe_usage(self, headers: Mapping[str, str] | None, *, account: str | None = None) -> None:
        """Re-sync from the venue's usage headers (sync: called from ccxt's ``on_rest_response``)."""
        if not headers or not self._headers:
            return
        for name, value in headers.items():
            limit = self._headers.get(name.lower())
            if limit is None:
                continue
            try:
                reported = float(value) * limit.units_per_header_unit
            except ValueError:
                continue
            if math.isfinite(reported) and reported >= 0:
                self._observe(limit, account, reported)

    def used_ratio(self) -> float:
        """Share of the venue's weight budget admitted in its current window (this process's share of it)."""
        return self._local.used_ratio(self.limits[0], self.budget)

    def stats(self) -> LimiterStats:
        return LimiterStats(
            budget=self.budget,
            window_s=self.window_s,
            capacity=self.capacity,
            rate_per_second=self.rate_per_second,
            acquired_units=self._acquired_units,
            requests=self._requests,
            paused_until_monotonic=self._paused_until,
            retry_after_events=self._retry_after_events,
            mode=self.mode,
            share=self.share,
            order_requests=self._order_requests,
            resynced_units=self._resynced_units,
        )

    # ----- what the shared limiter overrides ---------------------------------------------------------

    async def _try(self, units: float, orders: int, account: str | None, priority: Priority) -> float:
        """Admit now (0) or say how long to wait."""
        paused = self.pause_remaining()
        if paused > 0:
            return paused
        return self._local.try_take(units, orders, account, priority)

    def _observe(self, limit: Limit, account: str | None, reported: float) -> None:
        self._resynced_units += self._local.resync(limit, account, reported)

    # ----- internals -------------------------------------------------------------------------------

    def _local_buckets(self, share: float, *, full_from: float | None = None) -> LocalBuckets:
        return LocalBuckets(
            self.limits,
            headroom=self.headroom,
            latency_allowance_s=self.latency_allowance_s,
            order_reserve=self.order_reserve,
            share=share,
            clock=self._clock,
            wall_clock=self._wall,
            full_from=full_from,
        )

    def _hold_until(self, until_monotonic: float) -> None:
        self._paused_until = max(self._paused_until, until_monotonic)

    def _count(self, units: float, priority: Priority) -> None:
        self._acquired_units += units
        self._requests += 1
        if priority == "order":
            self._order_requests += 1

    async def _pump(self, line: _Line) -> None:
        """Admit the line's waiters in order; one attempt (one Redis round trip) per batch."""
        try:
            while line.queue:
                while line.queue and line.queue[0].future.done():  # cancelled while waiting
                    line.queue.popleft()
                if not line.queue:
                    break
                batch = self._batch(line)
                units = sum(w.units for w in batch)
                orders = sum(w.orders for w in batch)
                wait = await self._try(units, orders, line.account, line.priority)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                for _ in batch:
                    waiter = line.queue.popleft()
                    if not waiter.future.done():
                        waiter.future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a Redis outage (the shared limiter handles those): fail loudly
            log.exception("limiter pump failed")
            while line.queue:
                waiter = line.queue.popleft()
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
        finally:
            line.pump = None

    def _batch(self, line: _Line) -> list[_Waiter]:
        head = line.queue[0]
        if not self._batching:
            return [head]
        # Half the room a read may fill: a batch must not wait for an empty bucket (the drain would idle).
        cap = max(head.units, self._batch_room(line.priority))
        batch, total = [head], head.units
        for waiter in list(line.queue)[1:]:
            if waiter.future.done() or total + waiter.units > cap:
                break
            batch.append(waiter)
            total += waiter.units
        return batch

    def _batch_room(self, priority: Priority) -> float:
        weight = self.limits[0]
        return self._local.shapes[weight.name].capacity * self._local.fraction(weight, priority) / 2


def order_limits(table: Iterable[tuple[str, float, float, str | None, float]]) -> tuple[Limit, ...]:
    """Per-account order-count limits from (name, orders, window_s, usage header, burst) rows; the burst is the
    share of the window's orders that may leave at once (the rest drain at the rate the bound leaves)."""
    return tuple(
        Limit(name, budget, window_s, burst=burst, per_account=True, usage_header=header)
        for name, budget, window_s, header, burst in table
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); None when absent or malformed.

    The HTTP-date form is not used by crypto exchanges and is ignored rather than guessed at.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    # A hostile or broken header must not freeze the venue for hours.
    return min(seconds, 300.0)
