"""Orders: create an order or an OCO exactly once (an Idempotency-Key made here when none is given), list, get,
cancel."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from aiotrade.client.core import ClientCore, segment
from aiotrade.client.errors import ClientError
from aiotrade.client.retrying import KEYED, SAFE, UNSAFE
from aiotrade.models.orders import CreateOcoRequest, CreateOrderRequest, Order, OrderList, OrderPage, OrderStatus


def new_idempotency_key() -> str:
    return "cl-" + secrets.token_urlsafe(18)


def _orders(account: str) -> str:
    return f"/api/v1/accounts/{segment(account)}/orders"


class OrdersApi(ClientCore):
    async def create_order(
        self, account: str, body: CreateOrderRequest, *, idempotency_key: str | None = None
    ) -> Order:
        """Place ``body`` once. Every retry of this call sends the same key, so a lost answer is replayed, never
        placed twice; a raised error carries the key (``error.idempotency_key``) for asking again later."""
        key = idempotency_key or new_idempotency_key()
        try:
            return await self._call(
                "POST", _orders(account), Order, kind=KEYED, body=body, headers={"Idempotency-Key": key}
            )
        except ClientError as error:
            error.idempotency_key = key
            raise

    async def create_oco(
        self, account: str, body: CreateOcoRequest, *, idempotency_key: str | None = None
    ) -> OrderList:
        """Place the OCO's two legs once, under one key across this call's retries (as `create_order`)."""
        key = idempotency_key or new_idempotency_key()
        path = f"/api/v1/accounts/{segment(account)}/order-lists"
        try:
            return await self._call("POST", path, OrderList, kind=KEYED, body=body, headers={"Idempotency-Key": key})
        except ClientError as error:
            error.idempotency_key = key
            raise

    async def list_orders(
        self,
        account: str,
        *,
        symbol: str | None = None,
        status: Sequence[OrderStatus] | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> OrderPage:
        """Newest first; pass the page's ``next_cursor`` as ``cursor`` for the next one."""
        query = {"symbol": symbol, "status": status, "from": from_, "to": to, "cursor": cursor, "limit": limit}
        return await self._call("GET", _orders(account), OrderPage, kind=SAFE, query=query)

    async def get_order(self, account: str, order_id: str) -> Order:
        return await self._call("GET", f"{_orders(account)}/{segment(order_id)}", Order, kind=SAFE)

    async def cancel_order(self, account: str, order_id: str) -> Order:
        # Not resent after an ambiguous failure: a second cancel of a cancelled order answers 409.
        return await self._call("DELETE", f"{_orders(account)}/{segment(order_id)}", Order, kind=UNSAFE)
