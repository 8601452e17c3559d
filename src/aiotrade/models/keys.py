"""API keys and WebSocket tickets on the wire: what an admin sends to make a key, and what comes back.

A key's secret appears in exactly one response: the one that made it (`CreatedApiKey`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Scope(StrEnum):
    """What a key may do. Scopes are independent: a key holds each one it uses."""

    READ = "read"  # market data; its accounts' orders, snapshots and performance; risk and portfolio maths
    TRADE = "trade"  # create and cancel orders, execute rebalances, save targets, send signals
    ADMIN = "admin"  # risk limits, trading state, keys, metrics


KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class NewApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=KEY_NAME_PATTERN, description="Unique among active keys.")
    scopes: list[Scope] = Field(min_length=1, max_length=3, description="Only scopes the calling key holds.")
    accounts: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Configured accounts the key may act on; `*`: every one. Only accounts the calling key "
        "holds (`*` only from a key with `*`).",
    )
    rate_limit: float | None = Field(
        default=None, ge=0, le=100_000, description="Inbound requests per second; 0: unlimited; default: 20."
    )


class ApiKeyInfo(BaseModel):
    """A key as the store holds it: never its secret."""

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="Not secret: names the key in audit rows and logs.")
    name: str
    scopes: list[Scope]
    accounts: list[str]
    rate_limit: float = Field(description="Inbound requests per second; 0: unlimited.")
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    active: bool


class CreatedApiKey(ApiKeyInfo):
    key: str = Field(description="The key itself: shown this once, stored only as a SHA-256 digest.")


class WsTicket(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket: str = Field(description="Pass as `?ticket=` on the live-stream handshake; single use.")
    expires_in_s: float
