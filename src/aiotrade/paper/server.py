"""The paper exchange over HTTP: Binance Spot's REST API on aiohttp.web, with weights, faults and controls.

`create_paper_app` assembles it (what each request goes through: `middleware`; the endpoints: `public`,
`private`, `admin`); `PaperExchange` runs it on a port of the current event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from aiotrade.paper.admin import add_admin_routes
from aiotrade.paper.config import Clock, FaultConfig, PaperConfig, PaperSettings
from aiotrade.paper.faults import FaultPolicy
from aiotrade.paper.market import SyntheticMarket
from aiotrade.paper.matching import MatchingEngine
from aiotrade.paper.middleware import admin_middleware, exchange_middleware
from aiotrade.paper.private import add_private_routes
from aiotrade.paper.public import add_public_routes
from aiotrade.paper.state import PAPER_STATE, PaperState, PaperStats, system_clock

__all__ = [
    "PAPER_STATE",
    "PaperConfig",
    "PaperExchange",
    "PaperSettings",
    "PaperState",
    "PaperStats",
    "create_paper_app",
    "serve_paper",
]

log = structlog.get_logger(__name__)


def create_paper_app(
    config: PaperConfig,
    *,
    clock: Clock | None = None,
    fault_policy: FaultPolicy | None = None,
    state: PaperState | None = None,
) -> web.Application:
    """The paper exchange as an aiohttp application; state in `app[PAPER_STATE]` (a fresh one unless given)."""
    app = web.Application(middlewares=[admin_middleware, exchange_middleware])
    app[PAPER_STATE] = state or PaperState(config, clock or system_clock, fault_policy)
    add_public_routes(app)
    add_private_routes(app)
    add_admin_routes(app)
    return app


class PaperExchange:
    """Runs the paper exchange on a port of the current event loop.

    `async with PaperExchange(PaperConfig(port=0)) as paper: paper.url` -> "http://127.0.0.1:<port>".
    `stop()` then `start()` again serves the same state on the same port (the one the OS chose, with port 0),
    as a restarted venue would; a new `PaperExchange` on that port starts afresh.
    """

    def __init__(
        self,
        config: PaperConfig | None = None,
        *,
        clock: Clock | None = None,
        fault_policy: FaultPolicy | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.config = config or PaperConfig()
        self.app = create_paper_app(self.config, clock=clock, fault_policy=fault_policy)
        self.state = self.app[PAPER_STATE]
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._last_port: int | None = None

    @property
    def market(self) -> SyntheticMarket:
        return self.state.market

    @property
    def engine(self) -> MatchingEngine:
        """The matching engine (its `ledger()` is the venue's own record of every order)."""
        return self.state.private.engine

    @property
    def stats(self) -> PaperStats:
        return self.state.stats

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the paper exchange is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def set_faults(self, faults: FaultConfig | None = None, **rates: Any) -> FaultConfig:
        """Replace the fault configuration (`set_faults()` clears it); keywords build a FaultConfig."""
        config = faults if faults is not None else FaultConfig(**rates)
        self.state.set_faults(config)
        return config

    def set_fault_policy(self, policy: FaultPolicy) -> None:
        self.state.fault_policy = policy

    @property
    def clock_offset_ms(self) -> int:
        return self.state.clock_offset_ms

    def set_clock_offset(self, offset_ms: int) -> None:
        """Make the exchange's clock run `offset_ms` ahead of the base clock (negative: behind), from now on."""
        self.state.clock_offset_ms = offset_ms

    @property
    def frozen(self) -> bool:
        return self.state.frozen

    def freeze(self) -> None:
        """Accept connections but answer nothing: exchange requests are held, unexecuted, until `unfreeze`,
        which closes their connections (admin endpoints keep answering)."""
        self.state.set_frozen(True)

    def unfreeze(self) -> None:
        self.state.set_frozen(False)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the paper exchange is already running")
        if self.app.frozen:  # an aiohttp app runs once: a restart serves the same state from a new one
            self.app = create_paper_app(self.config, state=self.state)
        # handler_cancellation: a slow answer whose client gave up stops at once instead of lingering.
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=self._shutdown_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self._last_port or self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = self._last_port = runner.addresses[0][1]  # the port the OS chose when config.port is 0

    async def stop(self) -> None:
        runner, self._runner, self._port = self._runner, None, None
        if runner is not None:
            frozen = self.state.frozen
            self.state.set_frozen(False)  # held requests close their connections now, not at the timeout
            await runner.cleanup()
            self.state.set_frozen(frozen)

    async def __aenter__(self) -> PaperExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve_paper(config: PaperConfig) -> None:
    """Serve the paper exchange until cancelled."""
    async with PaperExchange(config) as paper:
        log.info("paper exchange listening", url=paper.url, seed=config.seed)
        await asyncio.Event().wait()
