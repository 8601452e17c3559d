"""Warm-up: every venue's markets loaded in the background, so start-up never waits on an exchange; and
loaded again now and then, so a long-running process follows the venue's filters and listings."""

from __future__ import annotations

import asyncio
import gc
import logging

from aiotrade.errors import DomainError
from aiotrade.exchange.gateway import ExchangeGateway

log = logging.getLogger(__name__)

RETRY_S = (0.5, 1, 2, 5, 10, 30)


async def warm_up(gateway: ExchangeGateway) -> None:
    for venue in gateway.venue_names():
        for delay in (*RETRY_S, None):
            try:
                await gateway.markets(venue)
                break
            except DomainError as exc:
                log.warning("markets of %s not loaded yet: %s", venue, exc.detail)
                if delay is None:
                    break
                await asyncio.sleep(delay)
    # What start-up built (ccxt's tables, the markets, pydantic schemas) lives as long as the process:
    # keep it out of the cyclic collector's full passes, which otherwise walk it all again and again
    # and stall the event loop for tens of milliseconds each time.
    gc.collect()
    gc.freeze()


async def reload_markets(gateway: ExchangeGateway, venue: str) -> None:
    """One periodic reload; a venue that cannot answer keeps the markets loaded before."""
    try:
        markets = await gateway.reload_markets(venue)
    except DomainError as exc:
        log.warning("markets of %s not reloaded (the loaded ones stay): %s", venue, exc.detail)
        return
    log.info("markets of %s reloaded: %d symbols", venue, len(markets))
