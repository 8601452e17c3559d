"""An account as a desk handles it: the kill switch and resume, cancel-all, balances and fills."""

from __future__ import annotations

from datetime import datetime

from aiotrade.client.core import ClientCore, segment
from aiotrade.client.retrying import SAFE
from aiotrade.models.account import Balances, FillPage
from aiotrade.models.orders import CancelAllReport, HaltReport, HaltRequest, ResumeRequest
from aiotrade.models.risk import TradingStateView


def _account(account: str) -> str:
    return f"/api/v1/accounts/{segment(account)}"


class AccountsApi(ClientCore):
    async def halt_account(self, account: str, body: HaltRequest | None = None) -> HaltReport:
        """HALTED, then every open order cancelled. Resent like a read: halting twice halts once, and a kill
        switch should get through."""
        return await self._call("POST", f"{_account(account)}/halt", HaltReport, kind=SAFE, body=body)

    async def resume_account(self, account: str, body: ResumeRequest | None = None) -> TradingStateView:
        return await self._call("POST", f"{_account(account)}/resume", TradingStateView, kind=SAFE, body=body)

    async def cancel_all_orders(self, account: str, *, symbol: str | None = None) -> CancelAllReport:
        # Cancelling what is open, again, cancels nothing twice: safe to resend.
        path = f"{_account(account)}/orders"
        return await self._call("DELETE", path, CancelAllReport, kind=SAFE, query={"symbol": symbol})

    async def get_balances(self, account: str) -> Balances:
        return await self._call("GET", f"{_account(account)}/balances", Balances, kind=SAFE)

    async def list_fills(
        self,
        account: str,
        *,
        symbol: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> FillPage:
        """Newest first; pass the page's ``next_cursor`` as ``cursor`` for the next one."""
        query = {"symbol": symbol, "from": from_, "to": to, "cursor": cursor, "limit": limit}
        return await self._call("GET", f"{_account(account)}/fills", FillPage, kind=SAFE, query=query)
