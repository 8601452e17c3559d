"""Health, API keys, stream tickets, metrics and the loop-lag probe."""

from __future__ import annotations

from aiotrade.client.core import ClientCore, segment
from aiotrade.client.retrying import SAFE, UNSAFE
from aiotrade.models.keys import ApiKeyInfo, CreatedApiKey, NewApiKey, WsTicket

_KEYS = "/api/v1/admin/keys"


class AdminApi(ClientCore):
    async def healthz(self) -> dict[str, str]:
        return await self._call("GET", "/healthz", dict[str, str], kind=SAFE)

    async def readyz(self) -> dict[str, str | dict[str, str]]:
        """The checks when ready; `Unavailable` (its ``problem`` holds the checks) when not."""
        return await self._call("GET", "/readyz", dict[str, str | dict[str, str]], kind=SAFE)

    async def loop_lag(self, *, reset: bool | None = None) -> dict[str, float]:
        return await self._call("GET", "/debug/loop-lag", dict[str, float], kind=SAFE, query={"reset": reset})

    async def metrics(self) -> str:
        """The Prometheus text exposition (every worker's)."""
        return await self._call("GET", "/metrics", str, kind=SAFE)

    async def create_ws_ticket(self) -> WsTicket:
        # An unused ticket expires on its own within 30 s: a resend costs nothing.
        return await self._call("POST", "/api/v1/auth/ws-ticket", WsTicket, kind=SAFE)

    async def list_api_keys(self) -> list[ApiKeyInfo]:
        return await self._call("GET", _KEYS, list[ApiKeyInfo], kind=SAFE)

    async def create_api_key(self, body: NewApiKey) -> CreatedApiKey:
        """The new key is in this answer only (the server keeps a digest)."""
        return await self._call("POST", _KEYS, CreatedApiKey, kind=UNSAFE, body=body)

    async def revoke_api_key(self, name: str) -> ApiKeyInfo:
        return await self._call("DELETE", f"{_KEYS}/{segment(name)}", ApiKeyInfo, kind=UNSAFE)
