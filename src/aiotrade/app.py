"""create_app(settings) and the lifespan that opens and closes every shared resource."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from aiotrade.api.problems import install_problem_handlers
from aiotrade.api.routers import health, market
from aiotrade.config import Settings
from aiotrade.errors import DomainError
from aiotrade.exchange.pool import ExchangePool

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
                from aiotrade.paper.embed import start_embedded_paper  # only when it is used

                paper_url = await stack.enter_async_context(start_embedded_paper(settings.paper))
                overrides = dict.fromkeys(embedded, paper_url)
                log.info("embedded paper exchange at %s", paper_url)
            pool = await stack.enter_async_context(ExchangePool(settings, base_url_overrides=overrides))
            app.state.settings = settings
            app.state.pool = pool
            warm_up = asyncio.create_task(_warm_up(pool), name="aiotrade-warm-up")
            stack.push_async_callback(_cancel, warm_up)
            yield

    app = FastAPI(
        title="aiotrade",
        version="0.1.0",
        summary="A natively async crypto trading backend",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "market-data", "description": "Markets, tickers, books, trades, candles, status."},
            {"name": "health", "description": "Liveness and readiness."},
        ],
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(market.router)
    return app


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


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
