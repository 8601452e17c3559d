"""AiotradeClient: one typed method per API operation, named by its OpenAPI operation id."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiotrade.client.accounts import AccountsApi
from aiotrade.client.admin import AdminApi
from aiotrade.client.market import MarketApi
from aiotrade.client.orders import OrdersApi
from aiotrade.client.portfolio import PortfolioApi
from aiotrade.client.retrying import RetryPolicy
from aiotrade.client.risk import RiskApi
from aiotrade.client.stream import DEFAULT_RECONNECTS, STREAM_PATH, LiveFrame, live_frames


class AiotradeClient(MarketApi, OrdersApi, AccountsApi, RiskApi, PortfolioApi, AdminApi):
    """``async with AiotradeClient("http://127.0.0.1:8000", api_key=...) as client: ...``

    Answers are the server's own pydantic models (Decimal money, aware datetimes); errors are the typed
    exceptions of `aiotrade.client.errors`. Reads and other safe calls are retried with backoff that honours
    ``Retry-After``; `create_order` sends one Idempotency-Key across its retries; other writes are resent only
    when the server surely did nothing.
    """

    def stream_live(
        self, account: str | None = None, *, since: int | None = None, reconnects: RetryPolicy = DEFAULT_RECONNECTS
    ) -> AsyncIterator[LiveFrame]:
        """The live stream of ``account`` (default: the server's default account): snapshots, then order and
        fill events, reconnecting and resuming after the last event seen (see `aiotrade.client.stream`)."""
        ws_url = "ws" + self.base_url.removeprefix("http") + STREAM_PATH
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key is not None else {}
        return live_frames(ws_url, headers, account=account, since=since, policy=reconnects)
