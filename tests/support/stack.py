"""The whole stack for a test: paper exchange on loopback, the app over it, an httpx client.

httpx -> FastAPI (lifespan run by asgi-lifespan) -> services -> ExchangePool -> real
ccxt.async_support.binance -> real HTTP on 127.0.0.1 -> the paper exchange.

Every app built from `stack_settings` stores `TEST_API_KEY` (every scope, every account, no rate limit) as its
bootstrap key, and the stack's client sends it; `Stack.client(key)` talks to the same app with another key.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from aiotrade.api.auth import create_key, digest_of, key_id_of
from aiotrade.api.idempotency import scoped
from aiotrade.app import create_app
from aiotrade.config import (
    PAPER_API_KEY,
    PAPER_SECRET,
    AccountConfig,
    AuthConfig,
    HttpConfig,
    OrdersConfig,
    RateLimitConfig,
    RetryConfig,
    Settings,
    VenueConfig,
)
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.exchange.pool import ExchangePool
from aiotrade.models.keys import CreatedApiKey, NewApiKey
from aiotrade.paper.config import Clock, PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.services.orders.keys import MAX_IDEMPOTENCY_KEY

BASE_URL = "http://aiotrade.test"
# One per test process: every app of the stack stores it (idempotently), so replicas on one database share it.
TEST_API_KEY = "at_" + secrets.token_urlsafe(32)
TEST_HOSTS = ["aiotrade.test", "localhost", "127.0.0.1", "[::1]"]


TEST_KEY_ID = key_id_of(digest_of(TEST_API_KEY))


def auth_headers(key: str = TEST_API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def scoped_key(header: str, key_id: str = TEST_KEY_ID) -> str:
    """The idempotency key stored for ``header`` sent by the key ``key_id`` (the stack's by default)."""
    return scoped(key_id, header, MAX_IDEMPOTENCY_KEY)


@dataclass
class Stack:
    paper: PaperExchange
    app: FastAPI
    api: httpx.AsyncClient
    settings: Settings

    @property
    def pool(self) -> ExchangePool:
        return self.app.state.pool

    @property
    def gateway(self) -> ExchangeGateway:
        return self.app.state.gateway

    @contextlib.asynccontextmanager
    async def client(self, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
        """Another client of the same app, sending ``key`` (None: no Authorization header)."""
        headers = auth_headers(key) if key is not None else {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        ) as client:
            yield client

    async def make_key(
        self, name: str, scopes: str = "read,trade,admin", accounts: str = "*", rate_limit: float = 0
    ) -> CreatedApiKey:
        """A new API key in the stack's store (what `keys create` does)."""
        return await make_key(self.app, name, scopes, accounts, rate_limit)

    def paper_requests(self, path: str) -> int:
        """How many requests the paper exchange has seen on ``path``."""
        return self.paper.stats.requests.get(path, 0)


async def make_key(
    app: FastAPI, name: str, scopes: str = "read,trade,admin", accounts: str = "*", rate_limit: float = 0
) -> CreatedApiKey:
    request = NewApiKey(
        name=name, scopes=scopes.split(",") if scopes else [], accounts=accounts.split(","), rate_limit=rate_limit
    )
    return await create_key(app.state.api_keys, app.state.settings, request, created_by="test")


def stack_settings(
    paper_url: str, data_dir: Path, *, venue_overrides: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    venue: dict[str, Any] = {
        "base_url": paper_url,
        "timeout_ms": 3_000,
        # A roomy budget keeps functional tests fast; the limiter's own tests use the real one.
        "rate_limit": RateLimitConfig(budget=100_000),
        **(venue_overrides or {}),
    }
    values: dict[str, Any] = {
        "venues": {"paper": VenueConfig(**venue)},
        "accounts": {"paper": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET)},
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'aiotrade.db'}",
        "retry": RetryConfig(attempts=4, initial_delay_s=0.01, max_delay_s=0.05, deadline_s=10),
        "orders": OrdersConfig(reconcile_interval_s=3600),
        "equity_interval_s": 3600,
        "auth": AuthConfig(bootstrap_key=TEST_API_KEY),
        "http": HttpConfig(allowed_hosts=TEST_HOSTS),
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_stack(
    data_dir: Path,
    *,
    paper_config: PaperConfig | None = None,
    paper_clock: Clock | None = None,
    venue_overrides: dict[str, Any] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    config = paper_config or PaperConfig(port=0, seed=7, weight_limit=500_000)
    async with PaperExchange(config, clock=paper_clock) as paper:
        settings = stack_settings(paper.url, data_dir, venue_overrides=venue_overrides, **settings_overrides)
        async with app_instance(settings) as (app, api):
            yield Stack(paper=paper, app=app, api=api, settings=settings)


@contextlib.asynccontextmanager
async def app_instance(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One app (a replica) with its lifespan running, and a client that talks to it in-process."""
    app = create_app(settings)
    watchdog: asyncio.Task[None] | None = None
    try:
        async with (
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url=BASE_URL, headers=auth_headers()
            ) as api,
        ):
            try:
                yield app, api
            finally:
                watchdog = asyncio.create_task(_stacks_after(20.0, "shutdown still running after 20 s"))
    except TimeoutError:
        # A start-up or shutdown that outlasts its bound (seen rarely under a loaded full suite): show where
        # every task waits, so the next occurrence says what held it.
        _print_stacks("start-up or shutdown timed out")
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()


async def _stacks_after(seconds: float, why: str) -> None:
    """Where every task waits, printed while a shutdown is still stuck (the timeout's own dump comes after
    cancellation has unwound what held it)."""
    await asyncio.sleep(seconds)
    _print_stacks(why)


def _print_stacks(why: str) -> None:
    print(f"----- {why}: every task's stack -----", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=40, file=sys.stderr)
