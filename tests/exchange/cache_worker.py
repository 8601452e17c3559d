"""One process of the cross-process cache test: wait for a start time, then make many identical reads.

    python -m tests.exchange.cache_worker REDIS_URL KEY START_AT CALLS SHARED(0|1)

Every upstream fetch is counted in Redis (INCR fetches:KEY), the ledger the test reads; this process's
cache counters are printed as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from redis.asyncio import Redis

from aiotrade.exchange.cache import MarketCache


async def main(redis_url: str, key: str, start_at: float, calls: int, shared: bool) -> None:
    ledger = Redis.from_url(redis_url)
    cache_redis = Redis.from_url(redis_url) if shared else None
    cache = MarketCache(redis=cache_redis)

    async def fetch() -> dict[str, str]:
        await ledger.incr(f"fetches:{key}")
        await asyncio.sleep(0.2)  # an upstream round trip
        return {"symbol": "BTC/USDT", "last": "97000.01"}

    await asyncio.sleep(max(0.0, start_at - time.time()))
    results = await asyncio.gather(
        *(
            cache.get_or_fetch(key, 5.0, fetch, encode=lambda v: json.dumps(v).encode(), decode=json.loads)
            for _ in range(calls)
        )
    )
    assert all(r.value["last"] == "97000.01" for r in results)
    print(json.dumps(cache.stats.snapshot()))
    await ledger.aclose()
    if cache_redis is not None:
        await cache_redis.aclose()


if __name__ == "__main__":
    url, key, start, count, shared = sys.argv[1:6]
    asyncio.run(main(url, key, float(start), int(count), shared == "1"))
