"""Everything mutable about one running paper exchange, shared by its middleware and handlers.

The exchange's clock is the machine's (or a test's) plus `clock_offset_ms`: every time the exchange tells or
checks — serverTime, trade times, signed-request windows, weight windows — is on that skewed clock, so a
client with an unsynchronised clock sees exactly what it would see against a Binance whose clock differs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from aiotrade.paper.auth import PaperAccount, PrivateApi
from aiotrade.paper.config import Clock, FaultConfig, PaperConfig
from aiotrade.paper.faults import FaultPolicy, RandomFaults
from aiotrade.paper.market import SyntheticMarket
from aiotrade.paper.matching import MatchingEngine
from aiotrade.paper.prices import MarketPrices
from aiotrade.paper.symbols import listing
from aiotrade.paper.weights import WeightWindow, interval_name
from aiotrade.paper.wire import Wire

SAPI_WEIGHT_LIMIT = 12_000  # Binance's separate per-IP SAPI budget; counted, never enforced here
_STATS_WINDOWS = 120  # windows of weight history kept for /__paper/stats


def system_clock() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class PaperStats:
    """Counters read by tests and benchmarks (via `PaperExchange.stats` or `GET /__paper/stats`)."""

    requests: Counter[str] = field(default_factory=Counter)  # by path; unknown paths as "other"
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # by FaultKind value, and "frozen"
    rate_limited: int = 0  # 429s sent because the weight budget was exceeded (not injected ones)
    banned: int = 0  # 418s sent during an IP ban
    weight: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_STATS_WINDOWS))  # [start, used]
    sapi_weight: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_STATS_WINDOWS))

    def reset(self) -> None:
        fresh = PaperStats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def charge(self, history: deque[list[int]], window_start: int, weight: int) -> None:
        if history and history[-1][0] == window_start:
            history[-1][1] += weight
        else:
            history.append([window_start, weight])

    def snapshot(self, weight_limit: int) -> dict[str, Any]:
        return {
            "weight_limit": weight_limit,
            "requests_total": sum(self.requests.values()),
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "rate_limited": self.rate_limited,
            "banned": self.banned,
            "faults": dict(self.faults),
            "weight": [{"window_start": s, "used": u} for s, u in self.weight],
            "sapi_weight": [{"window_start": s, "used": u} for s, u in self.sapi_weight],
        }


class PaperState:
    """The market, the matching engine and keys, the weight windows, faults, the clock and the freeze switch."""

    def __init__(self, config: PaperConfig, clock: Clock, fault_policy: FaultPolicy | None) -> None:
        self.config = config
        self._base_clock = clock
        self.clock_offset_ms = config.clock_offset_ms
        assets, symbols = listing(config.extra_assets)
        self.market = SyntheticMarket(config.seed, symbols=symbols, assets=assets, origin_ms=config.origin_ms)
        self.wires = {symbol: Wire(spec) for symbol, spec in self.market.symbols.items()}
        self.weights = WeightWindow(config.weight_limit, config.weight_window_ms)
        self.sapi_weights = WeightWindow(SAPI_WEIGHT_LIMIT)
        self.stats = PaperStats()
        self.fault_policy: FaultPolicy = fault_policy or RandomFaults(config.faults, seed=config.seed)
        engine = MatchingEngine(
            MarketPrices(self.market),
            clock=self.clock,
            commission_rate=config.commission_rate,
            orders_per_10s=config.orders_per_10s,
        )
        accounts = [PaperAccount(a.api_key, a.secret, dict(a.balances), a.enable_withdrawals) for a in config.accounts]
        self.private = PrivateApi(engine, accounts, keys_created_ms=config.origin_ms)
        self._latency_random = random.Random(config.seed ^ 0x1A7E)
        self._thawed = asyncio.Event()  # set while the exchange answers; cleared while it is frozen
        self._thawed.set()
        self.banned_until = 0  # exchange time until which every request is answered 418
        self._refusals: tuple[int, int] = (-1, 0)  # (weight window start, weight 429s sent in it)

    # -- the clock ----------------------------------------------------------------------------------------

    def clock(self) -> int:
        """The exchange's time in ms: the base clock plus the configured (or admin-set) offset."""
        return self._base_clock() + self.clock_offset_ms

    # -- faults, latency, freeze --------------------------------------------------------------------------

    def set_faults(self, faults: FaultConfig) -> None:
        self.fault_policy = RandomFaults(faults, seed=self.config.seed)

    @property
    def faults(self) -> FaultConfig | None:
        return self.fault_policy.config if isinstance(self.fault_policy, RandomFaults) else None

    def latency_s(self) -> float:
        jitter = self._latency_random.uniform(0, self.config.jitter_ms) if self.config.jitter_ms else 0.0
        return (self.config.latency_ms + jitter) / 1000

    @property
    def frozen(self) -> bool:
        return not self._thawed.is_set()

    def set_frozen(self, frozen: bool) -> None:
        if frozen:
            self._thawed.clear()
        else:
            self._thawed.set()

    async def wait_thawed(self) -> None:
        await self._thawed.wait()

    # -- weight bans (HTTP 418) ---------------------------------------------------------------------------

    def note_weight_refusal(self, now: int) -> None:
        """Count a weight 429; after `ban_after_429s` of them in one window, ban for `ban_ms`."""
        start = self.weights.window_start
        window, count = self._refusals
        count = count + 1 if window == start else 1
        self._refusals = (start, count)
        if self.config.ban_after_429s and count >= self.config.ban_after_429s:
            self.banned_until = now + self.config.ban_ms

    # -- what exchangeInfo tells ---------------------------------------------------------------------------

    def rate_limits(self) -> list[dict[str, object]]:
        number, name = interval_name(self.config.weight_window_ms)
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": name,
                "intervalNum": number,
                "limit": self.config.weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.config.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160_000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61_000},
        ]


PAPER_STATE = web.AppKey("paper_state", PaperState)
