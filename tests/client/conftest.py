"""The real app over real HTTP: the test stack (paper exchange, store, lifespan) served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.stack import Stack, running_stack


@dataclass
class Served:
    stack: Stack
    url: str
    port: int


@contextlib.asynccontextmanager
async def uvicorn_serving(app: FastAPI, port: int = 0) -> AsyncIterator[int]:
    """uvicorn on 127.0.0.1 in this loop, over an app whose lifespan runs already; yields the port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with running_stack(tmp_path) as stack, uvicorn_serving(stack.app) as port:
        yield Served(stack, f"http://127.0.0.1:{port}", port)
