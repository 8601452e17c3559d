"""create_app(settings) and the lifespan that opens and closes every shared resource."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI

from aiotrade.api.limits import BodySizeLimit
from aiotrade.api.problems import install_problem_handlers
from aiotrade.api.routers import health, live_stream, market, orders, portfolio, risk
from aiotrade.config import Settings
from aiotrade.errors import DomainError
from aiotrade.exchange.pool import ExchangePool
from aiotrade.loop_monitor import LoopMonitor
from aiotrade.services import live
from aiotrade.services import orders as order_service
from aiotrade.services.live_hub import LiveHub
from aiotrade.store.db import make_engine, make_sessions, migrate
from aiotrade.store.orders import OrderStore
from aiotrade.store.portfolio import PortfolioStore
from aiotrade.store.risk import RiskStore

log = logging.getLogger(__name__)

WARM_UP_RETRY_S = (0.5, 1, 2, 5, 10, 30)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            overrides: dict[str, str] = {}
            embedded = settings.embedded_paper_venues()
            if embedded:
                from aiotrade.embedded_paper import start_embedded_paper  # only when it is used

                paper_url = await stack.enter_async_context(start_embedded_paper(settings.paper))
                overrides = dict.fromkeys(embedded, paper_url)
                log.info("embedded paper exchange at %s", paper_url)
            engine = make_engine(settings.effective_database_url())
            stack.push_async_callback(engine.dispose)
            await migrate(engine)
            sessions = make_sessions(engine)
            store = OrderStore(sessions)
            pool = await stack.enter_async_context(ExchangePool(settings, base_url_overrides=overrides))
            policy = order_policy(settings)
            # Entered after the pool, so it closes (and stops computing) before the pool does.
            app.state.live_hub = await stack.enter_async_context(
                LiveHub(
                    lambda account: live.get_live_portfolio_snapshot(pool, store, account),
                    accounts=settings.accounts.keys(),
                    default_account=settings.default_account if settings.accounts else None,
                    interval_s=settings.live_interval_s,
                )
            )

            app.state.settings = settings
            app.state.pool = pool
            app.state.store = store
            risk_store = RiskStore(sessions)
            app.state.risk_store = risk_store
            app.state.portfolio_store = PortfolioStore(sessions)
            app.state.engine = engine
            app.state.order_policy = policy
            app.state.loop_monitor = LoopMonitor()
            for task in (
                _background("loop-monitor", app.state.loop_monitor.run, repeat_s=None),
                _background("warm-up", lambda: _warm_up(pool), repeat_s=None),
                _background(
                    "reconciler",
                    lambda: order_service.reconcile(pool, store, policy),
                    repeat_s=settings.orders.reconcile_interval_s,
                ),
                _background("key-purge", store.purge_expired_keys, repeat_s=3600),
                _background(
                    "equity-recorder",
                    lambda: _record_equity(pool, store, risk_store, settings),
                    repeat_s=settings.equity_interval_s,
                ),
            ):
                stack.push_async_callback(_cancel, task)
            yield

    app = FastAPI(
        title="aiotrade",
        version="0.1.0",
        summary="A natively async crypto trading backend",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "market-data", "description": "Markets, tickers, books, trades, candles, status."},
            {"name": "orders", "description": "Create exactly once, cancel, get, history."},
            {"name": "risk", "description": "Sizing, the pre-trade gate, probabilities, portfolio risk, limits."},
            {"name": "portfolio", "description": "Allocations, signals, status, rebalancing, live snapshot."},
            {"name": "health", "description": "Liveness and readiness."},
        ],
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(market.router)
    app.include_router(orders.router)
    app.include_router(risk.router)
    app.include_router(portfolio.router)
    app.include_router(live_stream.router)
    return app


def order_policy(settings: Settings) -> order_service.OrderPolicy:
    config = settings.orders
    return order_service.OrderPolicy(
        landing_window_ms=config.landing_window_ms,
        clock_skew_ms=config.clock_skew_ms,
        max_sends=config.max_sends,
        key_lease=timedelta(seconds=config.idempotency_lease_s),
        key_retention=timedelta(hours=config.idempotency_retention_h),
    )


def _background(name: str, job: Callable[[], Awaitable[object]], *, repeat_s: float | None) -> asyncio.Task[None]:
    """Run ``job`` now and then every ``repeat_s``; a failure is logged, never fatal."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("background job %s failed", name)
            if repeat_s is None:
                return
            await asyncio.sleep(repeat_s)

    return asyncio.create_task(loop(), name=f"aiotrade-{name}")


async def _record_equity(pool: ExchangePool, store: OrderStore, risk_store: RiskStore, settings: Settings) -> None:
    """Append each account's equity to the history (performance and drawdown limits read it)."""
    for account in settings.accounts:
        limits = await risk_store.limits(account)
        try:
            snapshot = await live.get_live_portfolio_snapshot(pool, store, account, limits.quote_currency)
        except DomainError as exc:
            log.warning("equity of %s not recorded: %s", account, exc.detail)
            continue
        if snapshot.total_value is not None:  # a partial valuation would record a false drop
            await risk_store.record_equity(account, limits.quote_currency, snapshot.total_value)


async def _warm_up(pool: ExchangePool) -> None:
    """Load every venue's markets in the background, so start-up never waits on an exchange."""
    for venue in pool.venue_names():
        for delay in (*WARM_UP_RETRY_S, None):
            try:
                await pool.markets(venue)
                break
            except DomainError as exc:
                log.warning("markets of %s not loaded yet: %s", venue, exc.detail)
                if delay is None:
                    break
                await asyncio.sleep(delay)
    # What start-up built (ccxt's tables, the markets, pydantic schemas) lives as long as the process:
    # keep it out of the cyclic collector's full passes, which otherwise walk it all again and again
    # and stall the event loop for tens of milliseconds each time.
    gc.collect()
    gc.freeze()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
