"""create_app(settings) and the lifespan that opens and closes every shared resource."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from aiotrade.api.auth import install_guards, open_auth
from aiotrade.api.limits import BodySizeLimit
from aiotrade.api.middleware import Drain, RequestContext, StartupRefusals
from aiotrade.api.openapi import document_problems
from aiotrade.api.problems import install_problem_handlers
from aiotrade.api.routers import accounts, admin, health, live_stream, market, orders, portfolio, risk
from aiotrade.api.routers.dashboard import dashboard_router
from aiotrade.api.routers.docs import docs_router
from aiotrade.api.security import document_security
from aiotrade.api.strict_json import RejectDuplicateKeys
from aiotrade.compute import ComputePool, serve_worker_count
from aiotrade.config import Settings
from aiotrade.exchange.cache import MarketCache
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.exchange.limiter_redis import redis_client
from aiotrade.exchange.pool import ExchangePool
from aiotrade.jobs import runner
from aiotrade.jobs.equity import record_and_monitor
from aiotrade.jobs.leadership import JOBS_LEASE, Leadership, holder_id
from aiotrade.jobs.warmup import reload_markets, warm_up
from aiotrade.loop_monitor import LoopMonitor
from aiotrade.observability.metrics import mark_process_dead
from aiotrade.services import live
from aiotrade.services.accounts import refuse_withdrawal_keys
from aiotrade.services.orders.reconciliation import reconcile
from aiotrade.services.risk.gate import RiskGate
from aiotrade.store.db import make_engine, make_sessions, migrate
from aiotrade.store.events import EventStore
from aiotrade.store.gate import GateStore
from aiotrade.store.leases import LeaseStore
from aiotrade.store.orders import OrderStore
from aiotrade.store.portfolio import PortfolioStore
from aiotrade.store.retention import Retention, purge
from aiotrade.store.risk import RiskStore
from aiotrade.stream.hub import LiveHub, StoredEvents
from aiotrade.stream.relay import RedisRelay

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    drain = Drain()

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
            # This worker's metric files are swept when it stops (several workers share one directory).
            stack.callback(mark_process_dead, os.getpid())
            # Heavy maths in worker processes, warm before we serve; closed last, after every request's job.
            app.state.compute = await stack.enter_async_context(
                ComputePool(settings.compute, uvicorn_workers=serve_worker_count())
            )
            engine = make_engine(settings.effective_database_url())
            stack.push_async_callback(engine.dispose)
            if app.state.tracing is not None:
                app.state.tracing.instrument_engine(engine)
                stack.callback(app.state.tracing.shutdown)
            await migrate(engine)
            sessions = make_sessions(engine)
            # One Redis client for the process (venue budgets, market-data cache, inbound key limits, the live
            # stream's relay); None without AIOTRADE_REDIS_URL. Closed after everything that uses it.
            app.state.redis = redis_client(settings.redis_url.get_secret_value()) if settings.redis_url else None
            if app.state.redis is not None:
                stack.push_async_callback(app.state.redis.aclose)
            await open_auth(app, settings, sessions)  # API keys: the store, its cache, the inbound limiter
            store = OrderStore(sessions)
            risk_store = RiskStore(sessions)
            pool = await stack.enter_async_context(
                ExchangePool(settings, base_url_overrides=overrides, redis=app.state.redis)
            )
            app.state.market_cache = MarketCache.from_settings(settings.cache, redis=app.state.redis)
            gateway = ExchangeGateway(pool, cache=app.state.market_cache, ttls=settings.cache)
            await refuse_withdrawal_keys(gateway, settings.accounts, settings.venues)  # keys able to withdraw: refused
            gate_store = GateStore(sessions)
            gate = RiskGate(gateway, risk_store, gate_store)
            holder = holder_id()  # this process, in the jobs lease and the stream's producer leases
            # With Redis, one replica computes each account's stream and every replica fans it out; the
            # relay closes after the hub (which resigns its leases as it closes).
            relay = RedisRelay(app.state.redis, holder=holder) if app.state.redis is not None else None
            if relay is not None:
                stack.push_async_callback(relay.close)
            # Entered after the pool, so it closes (and stops computing) before the pool does.
            app.state.live_hub = await stack.enter_async_context(
                LiveHub(
                    lambda account: live.get_live_portfolio_snapshot(gateway, store, account),
                    accounts=settings.accounts.keys(),
                    default_account=settings.default_account if settings.accounts else None,
                    interval_s=settings.live_interval_s,
                    events=StoredEvents(EventStore(sessions)),
                    relay=relay,
                )
            )
            # On the stop signal: refuse new requests and close live streams (1001) while requests drain.
            stack.enter_context(drain.on_signals(app.state.live_hub.close))

            app.state.settings = settings
            app.state.pool = pool
            app.state.gateway = gateway
            app.state.gate = gate
            app.state.gate_store = gate_store
            app.state.store = store
            app.state.risk_store = risk_store
            app.state.portfolio_store = PortfolioStore(sessions)
            app.state.engine = engine
            app.state.loop_monitor = LoopMonitor()
            # What must happen once runs on the holder of the jobs lease, once per interval.
            leases = LeaseStore(sessions)
            leadership = Leadership(leases, JOBS_LEASE, holder=holder, ttl_s=settings.jobs.lease_ttl_s)
            app.state.leadership = leadership
            await leadership.step()  # the first replica up leads at once
            stack.push_async_callback(leadership.release)
            led = {"leases": leases, "leadership": leadership}
            for task in (
                runner.start("loop-monitor", app.state.loop_monitor.run, repeat_s=None),
                runner.start("warm-up", lambda: warm_up(gateway), repeat_s=None),
                *(
                    runner.start(
                        f"markets-{venue}",
                        lambda venue=venue: reload_markets(gateway, venue),
                        repeat_s=config.markets_refresh_s,
                        first_after_s=config.markets_refresh_s,
                    )
                    for venue, config in settings.venues.items()
                    if config.markets_refresh_s > 0
                ),
                runner.start("leadership", leadership.run, repeat_s=None),
                runner.start_led(
                    "reconciler",
                    lambda _: reconcile(gateway, store, settings.orders, risk_store),
                    interval_s=settings.orders.reconcile_interval_s,
                    **led,
                ),
                runner.start_led(
                    "retention",
                    lambda _: purge(sessions, retention(settings)),
                    interval_s=settings.jobs.purge_interval_s,
                    **led,
                ),
                runner.start_led(
                    "equity-recorder",
                    lambda interval: record_and_monitor(gateway, risk_store, settings.accounts, interval=interval),
                    interval_s=settings.equity_interval_s,
                    **led,
                ),
            ):
                stack.push_async_callback(runner.stop, task)
            yield
        log.info("stopped: background jobs, live streams, exchange pools and the database are closed")

    app = FastAPI(
        title="aiotrade",
        version="0.1.0",
        summary="A natively async crypto trading backend",
        lifespan=lifespan,
        docs_url=None,  # served offline by api/routers/docs.py
        redoc_url=None,
        openapi_tags=[
            {"name": "market-data", "description": "Markets, tickers, books, trades, candles, status."},
            {"name": "orders", "description": "Create exactly once, cancel, get, history."},
            {"name": "accounts", "description": "Kill switch and resume, cancel-all, balances, fills."},
            {"name": "risk", "description": "Sizing, the pre-trade gate, probabilities, portfolio risk, limits."},
            {"name": "portfolio", "description": "Allocations, signals, status, rebalancing, live snapshot."},
            {"name": "health", "description": "Liveness and readiness."},
            {"name": "admin", "description": "API keys and metrics (scope `admin`)."},
        ],
    )
    install_problem_handlers(app)
    _document_problems(app)
    app.add_middleware(RejectDuplicateKeys)  # inside the size limit: it buffers only bounded bodies
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_guards(app, settings)  # Host, CORS, API keys: inside the request id, before any body is read
    # Outermost: every request, refused ones included, gets its request id, access line and metrics.
    app.add_middleware(
        RequestContext, access_log=settings.access_log, trust_request_id=settings.trust_request_id, drain=drain
    )
    app.add_middleware(StartupRefusals)  # lifespan only: a refusal to start is logged as its message alone
    tracing = None
    if settings.tracing.enabled:  # the tracing extra: imported only when it is used
        from aiotrade.observability.tracing import configure_tracing

        tracing = configure_tracing(
            app, enabled=True, service_name=settings.tracing.service_name, exporter=settings.tracing.exporter
        )
    app.state.tracing = tracing
    app.state.drain = drain
    app.include_router(health.router)
    app.include_router(market.router)
    app.include_router(orders.router)
    app.include_router(accounts.router)
    app.include_router(risk.router)
    app.include_router(portfolio.router)
    app.include_router(live_stream.router)
    app.include_router(admin.router)
    app.include_router(docs_router(title=app.title, openapi_url=app.openapi_url or "/openapi.json"))
    app.include_router(dashboard_router())
    return app


def retention(settings: Settings) -> Retention:
    config = settings.retention
    return Retention(
        audit=timedelta(days=config.audit_days),
        equity=timedelta(days=config.equity_days),
        events=timedelta(days=config.events_days),
        job_runs=timedelta(days=config.job_runs_days),
    )


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document, with the problems our middleware answers added to the operations."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_security(document_problems(build()), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
