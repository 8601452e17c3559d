"""One live-stream computation per account across replicas: a producer lease and pub/sub in Redis.

Every replica with subscribers for an account asks `lead(account)`; the one holding the account's lease
(Redis `SET NX PX`, renewed while it computes, handed over when its last subscriber leaves) computes the
snapshot and `publish`es each new frame on the account's channel, also keeping it as the account's latest
frame for newcomers. Every replica — the producer included — fans frames out to its own subscribers
(`LiveHub`), so the slow-consumer rules stay per connection. Frames carry the producer's id; a replica
ignores its own echoes (it delivered them locally already).

If Redis fails, the hub computes for its own subscribers, as a replica without Redis does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

PREFIX = "aiotrade:live:"
Deliver = Callable[[str], None]

# Renew only our own lease; give it up only if it is ours (a compare-and-set each, atomic in Redis).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RESIGN = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisRelay:
    """Producer leases, frames and latest-frame keys for the live stream, in one Redis."""

    def __init__(self, redis: Redis, *, holder: str, lease_ms: int = 3_000, latest_ttl_ms: int = 60_000) -> None:
        self._redis = redis
        self.holder = holder
        self._lease_ms = lease_ms
        self._latest_ttl_ms = latest_ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._resign = redis.register_script(_RESIGN)
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._deliver: dict[str, Deliver] = {}

    async def lead(self, account: str) -> bool:
        """Whether we produce for ``account`` now (taking or renewing its lease). Raises if Redis fails."""
        key = PREFIX + "lead:" + account
        if await self._redis.set(key, self.holder, nx=True, px=self._lease_ms):
            return True
        return bool(await self._renew(keys=[key], args=[self.holder, self._lease_ms]))

    async def resign(self, account: str) -> None:
        with contextlib.suppress(Exception):
            await self._resign(keys=[PREFIX + "lead:" + account], args=[self.holder])

    async def publish(self, account: str, frame: str, *, keep_latest: bool = True) -> None:
        """Send ``frame`` to every replica and (a snapshot) keep it as the account's latest."""
        message = f"{self.holder}\n{frame}"
        if not keep_latest:
            await self._redis.publish(PREFIX + "frames:" + account, message)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(PREFIX + "latest:" + account, frame, px=self._latest_ttl_ms)
            pipe.publish(PREFIX + "frames:" + account, message)
            await pipe.execute()

    async def latest(self, account: str) -> str | None:
        value = await self._redis.get(PREFIX + "latest:" + account)
        return value.decode() if isinstance(value, bytes) else value

    async def subscribe(self, account: str, deliver: Deliver) -> None:
        """Deliver every frame another replica produces for ``account`` until `unsubscribe`."""
        self._deliver[account] = deliver
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(PREFIX + "frames:" + account)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="aiotrade-live-relay")

    async def unsubscribe(self, account: str) -> None:
        self._deliver.pop(account, None)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(PREFIX + "frames:" + account)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: the hub's producers compute locally meanwhile
                log.warning("live relay: reading frames failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            data = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
            producer, _, frame = data.partition("\n")
            deliver = self._deliver.get(channel.removeprefix(PREFIX + "frames:"))
            if deliver is not None and producer != self.holder:
                deliver(frame)
