"""The paper exchange embedded in `serve` (what `make run` uses): same event loop, a free port.

The adapter lives on the app side: `paper/` knows nothing of the app's settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiotrade.config import PaperEmbedConfig
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange


@contextlib.asynccontextmanager
async def start_embedded_paper(settings: PaperEmbedConfig) -> AsyncIterator[str]:
    """Run a paper exchange on 127.0.0.1 for as long as the context lasts; yields its base URL."""
    config = PaperConfig(seed=settings.seed, host="127.0.0.1", port=0, latency_ms=settings.latency_ms)
    async with PaperExchange(config) as paper:
        yield paper.url
