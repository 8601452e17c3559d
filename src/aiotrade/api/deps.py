"""Dependencies: the shared resources the lifespan opened, reached from a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aiotrade.config import Settings
from aiotrade.exchange.pool import ExchangePool


def get_pool(request: Request) -> ExchangePool:
    return request.app.state.pool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Pool = Annotated[ExchangePool, Depends(get_pool)]
AppSettings = Annotated[Settings, Depends(get_settings)]
