"""The live portfolio stream's fan-out: one computation per account, shared by every subscriber.

The promise:
- One producer task per account, started by the first subscriber and stopped when the last leaves;
  it calls ``compute(account)`` at most every ``interval_s`` (start to start), never concurrently,
  and publishes only when the snapshot changed (ignoring the ``volatile`` fields).
- Each update is serialised once; every subscriber's queue holds the same ``str``.
- A new subscriber gets the latest frame at once (or the first one, when it is computed).
- Publishing never awaits a socket: a subscriber whose queue is full is dropped and closed with
  ``CLOSE_TOO_SLOW``, and the others carry on.
- A failing ``compute`` is logged and turned into an error frame; the producer keeps going.
- When a stream ends nothing of it stays behind: no task, no queue, no entry in the hub.

Frames (JSON text): ``{"type": "snapshot", "account": ..., "data": <snapshot>}`` and
``{"type": "error", "account": ..., "detail": ...}``. Without a relay each replica computes for its own
subscribers; with one (Redis), one replica computes each account's snapshots for all of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol, Self

from pydantic import BaseModel

from aiotrade.errors import DomainError
from aiotrade.observability.metrics import LIVE_DROPPED, LIVE_SUBSCRIBERS

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001  # the hub is shutting down
CLOSE_UNKNOWN_ACCOUNT = 1008  # policy violation
CLOSE_TOO_SLOW = 1013  # try again later

Compute = Callable[[str], Awaitable[BaseModel]]


class EventFeed(Protocol):
    """Numbered order and fill events of an account, as ready frames (``{"type": "event", "seq": ...}``)."""

    async def last_seq(self, account: str) -> int: ...
    async def after(self, account: str, seq: int, *, limit: int = 1000) -> list[tuple[int, str]]: ...


class EventSource(Protocol):
    """Where numbered events are kept (`store.events.EventStore`)."""

    async def last_seq(self, account: str) -> int: ...
    async def after(self, account: str, seq: int, *, limit: int = 1000) -> Sequence[StoredEvent]: ...


class StoredEvent(Protocol):
    account: str
    seq: int
    kind: str
    payload: dict[str, Any]


class Relay(Protocol):
    """What the hub needs to share one producer per account across replicas (`stream/relay.py`)."""

    async def lead(self, account: str) -> bool: ...
    async def resign(self, account: str) -> None: ...
    async def publish(self, account: str, frame: str, *, keep_latest: bool = True) -> None: ...
    async def latest(self, account: str) -> str | None: ...
    async def subscribe(self, account: str, deliver: Callable[[str], None]) -> None: ...
    async def unsubscribe(self, account: str) -> None: ...


CloseReason = tuple[int, str]

_UNKNOWN_ACCOUNT: CloseReason = (CLOSE_UNKNOWN_ACCOUNT, "unknown account")
_NO_ACCOUNT: CloseReason = (CLOSE_UNKNOWN_ACCOUNT, "no account given and no default account")
_SHUTTING_DOWN: CloseReason = (CLOSE_GOING_AWAY, "server shutting down")
# Events a subscriber may have waiting besides its snapshots; a burst is read and offered in chunks of
# EVENT_CHUNK with a pause between, so a client that keeps reading is never dropped for a burst.
EVENT_BACKLOG = 256
EVENT_CHUNK = EVENT_BACKLOG // 2
EVENT_CHUNK_PAUSE_S = 0.02
_TOO_SLOW: CloseReason = (CLOSE_TOO_SLOW, "too slow: fell behind the live stream")
_WAKE = ""  # put in a queue to wake its reader when the stream ends; never a real frame


class Peer(Protocol):
    """One accepted client, as the hub sees it; the router adapts a WebSocket to this."""

    async def send_text(self, data: str) -> None:
        """Send one frame; raise ``ConnectionError`` once the client has gone."""

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``; raise ``ConnectionError`` if the client has already gone."""

    async def wait_closed(self) -> None:
        """Return when the client has gone (closed, or the connection dropped); ignore what it sends."""


class LiveHub:
    """Fans each account's live snapshots out to its subscribers; see the module docstring."""

    def __init__(
        self,
        compute: Compute,
        *,
        accounts: Collection[str] | Callable[[str], bool],
        default_account: str | None = None,
        interval_s: float = 1.0,
        queue_size: int = 4,
        volatile: Collection[str] = ("timestamp",),
        compute_timeout_s: float | None = 30.0,
        close_timeout_s: float = 5.0,
        relay: Relay | None = None,
        events: EventFeed | None = None,
    ) -> None:
        """``accounts`` is the set of known accounts or a predicate; ``volatile`` names the top-level
        fields left out when deciding whether a snapshot changed (they are still sent). With a ``relay``,
        one replica computes each account's snapshots for every replica (see `stream/relay.py`)."""
        if isinstance(accounts, str):
            raise TypeError("accounts: a collection of names or a predicate, not one string")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        if compute_timeout_s is not None and compute_timeout_s <= 0:
            raise ValueError(f"compute_timeout_s must be positive or None, got {compute_timeout_s}")
        self._compute = compute
        self._is_known: Callable[[str], bool]
        if callable(accounts):
            self._is_known = accounts
        else:
            self._is_known = frozenset(accounts).__contains__
        if default_account is not None and not self._is_known(default_account):
            raise ValueError(f"default_account: {default_account!r} is not a known account")
        self.default_account = default_account
        self.interval_s = interval_s
        self.queue_size = queue_size
        self._volatile = set(volatile)
        self._compute_timeout_s = compute_timeout_s
        self._close_timeout_s = close_timeout_s
        self._feeds: dict[str, _Feed] = {}
        self._relay = relay
        self._events = events
        self._streams: set[_Subscriber] = set()  # from join until serve() returns, dropped ones included
        self._closed = False

    async def serve(self, peer: Peer, account: str | None = None, *, since: int | None = None) -> None:
        """Stream ``account`` (default: ``default_account``) to an accepted ``peer`` until it leaves,
        falls behind, or the hub closes; the peer is closed with a code saying why the hub ended it.
        An unknown account is closed with ``CLOSE_UNKNOWN_ACCOUNT`` before anything is computed.
        With ``since``, the account's events numbered above it are sent first (a resumption)."""
        name = account or self.default_account
        if self._closed:
            await self._close_peer(peer, _SHUTTING_DOWN)
            return
        if name is None or not self._is_known(name):
            await self._close_peer(peer, _NO_ACCOUNT if name is None else _UNKNOWN_ACCOUNT)
            return
        subscriber = self._join(name)
        LIVE_SUBSCRIBERS.inc()
        gone = asyncio.create_task(peer.wait_closed(), name=f"aiotrade-live-peer-{name}")
        gone.add_done_callback(subscriber.on_peer_gone)
        try:
            if since is not None and self._events is not None:
                await self._replay(subscriber, peer, since)
            await self._pump(subscriber, peer)
        except ConnectionError:
            pass  # the client went away mid-send
        finally:
            stopped = self._leave(subscriber)
            try:
                if subscriber.why is not None and not gone.done():
                    await self._close_peer(peer, subscriber.why)
            finally:
                gone.cancel()
                await asyncio.wait({gone} if stopped is None else {gone, stopped})
                self._streams.discard(subscriber)
                LIVE_SUBSCRIBERS.dec()

    async def close(self) -> None:
        """Stop every producer and close every stream with ``CLOSE_GOING_AWAY``; returns once they have
        ended (each socket close is bounded by ``close_timeout_s``). Later subscribers are refused."""
        self._closed = True
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            feed.task.cancel()
            feed.subscribers.clear()
        for subscriber in self._streams:
            subscriber.end(_SHUTTING_DOWN)
        current = asyncio.current_task()
        pending = {feed.task for feed in feeds} | {s.handler for s in self._streams if s.handler not in (None, current)}
        if pending:
            await asyncio.wait(pending, timeout=self._close_timeout_s + 1)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def subscribers(self, account: str) -> int:
        """How many clients are subscribed to ``account`` right now."""
        feed = self._feeds.get(account)
        return 0 if feed is None else len(feed.subscribers)

    def streaming(self) -> frozenset[str]:
        """The accounts that have a producer."""
        return frozenset(self._feeds)

    def open_streams(self) -> int:
        """Streams not yet finished, including dropped ones still closing their socket."""
        return len(self._streams)

    # Subscribers

    def _join(self, account: str) -> _Subscriber:
        feed = self._feeds.get(account)
        if feed is None:
            feed = self._feeds[account] = _Feed(account)
            feed.task = asyncio.create_task(self._produce(feed), name=f"aiotrade-live-{account}")
        subscriber = _Subscriber(feed, self.queue_size)
        feed.subscribers.add(subscriber)
        self._streams.add(subscriber)
        if feed.latest is not None:
            subscriber.queue.put_nowait(feed.latest)
            subscriber.snapshots_queued += 1
        return subscriber

    def _leave(self, subscriber: _Subscriber) -> asyncio.Task[None] | None:
        """Forget ``subscriber``; when it was the last, stop the producer and return its task."""
        feed = subscriber.feed
        feed.subscribers.discard(subscriber)
        subscriber.end(None)
        if feed.subscribers or self._feeds.get(feed.account) is not feed:
            return None
        if feed.computing:
            return None  # the producer retires itself when this computation returns: never cut it off
        del self._feeds[feed.account]
        feed.task.cancel()  # it sleeps between computations: nothing is interrupted
        return feed.task

    async def _replay(self, subscriber: _Subscriber, peer: Peer, since: int) -> None:
        """The events a resuming client missed, straight from the record; live ones queue meanwhile."""
        assert self._events is not None
        subscriber.replayed_through = since
        for seq, frame in await self._events.after(subscriber.feed.account, since):
            if subscriber.ended:
                return
            await peer.send_text(frame)
            subscriber.replayed_through = seq

    async def _pump(self, subscriber: _Subscriber, peer: Peer) -> None:
        while True:
            frame = await subscriber.queue.get()
            if subscriber.ended:
                return
            if not frame.startswith(_EVENT_PREFIX):
                subscriber.snapshots_queued -= 1
            through = subscriber.replayed_through
            if through is not None and (seq := event_seq(frame)) is not None and seq <= through:
                continue  # sent by the replay already
            try:
                # The hub reschedules this deadline to "now" to interrupt a send stuck on a slow socket.
                async with asyncio.timeout(None) as subscriber.sending:
                    await peer.send_text(frame)
            except TimeoutError:
                return
            finally:
                subscriber.sending = None

    async def _close_peer(self, peer: Peer, why: CloseReason) -> None:
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await peer.close(*why)
        except (TimeoutError, ConnectionError) as exc:
            log.debug("live stream: could not close a client cleanly (%s)", type(exc).__name__)

    # Producer

    async def _produce(self, feed: _Feed) -> None:
        loop = asyncio.get_running_loop()
        await self._follow(feed)
        try:
            while True:
                started = loop.time()
                if await self._leads(feed):
                    feed.computing = True
                    try:
                        frame, changed = await self._next_frame(feed)
                    finally:
                        feed.computing = False
                    feed.latest = frame
                    if changed:
                        self._publish(feed, frame)
                        await self._relay_frame(feed, frame)
                    await self._publish_events(feed)
                elif feed.latest is None:
                    await self._catch_up(feed)
                if not feed.subscribers:  # the last one left (or was dropped) during this round
                    if self._feeds.get(feed.account) is feed:
                        del self._feeds[feed.account]
                    return
                await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))
        finally:
            await self._unfollow(feed)

    # Across replicas (a relay): one producer per account, every replica fans out

    async def _follow(self, feed: _Feed) -> None:
        if self._relay is None:
            return
        try:
            await self._relay.subscribe(feed.account, lambda frame: self._relayed(feed, frame))
            feed.followed = True
        except Exception as exc:
            log.warning("live stream of %s: relay unavailable (%s); computing here", feed.account, type(exc).__name__)

    async def _unfollow(self, feed: _Feed) -> None:
        if self._relay is not None and feed.followed:
            await asyncio.shield(self._release(feed))

    async def _release(self, feed: _Feed) -> None:
        assert self._relay is not None
        await self._relay.unsubscribe(feed.account)
        await self._relay.resign(feed.account)

    async def _leads(self, feed: _Feed) -> bool:
        """Whether this replica computes the account's snapshots this round (always, without a relay or
        while it fails)."""
        if self._relay is None or not feed.followed:
            return True
        try:
            return await self._relay.lead(feed.account)
        except Exception as exc:
            log.warning("live stream of %s: relay unavailable (%s); computing here", feed.account, type(exc).__name__)
            return True

    async def _publish_events(self, feed: _Feed) -> None:
        """The account's new order and fill events, each as its own frame (never folded away)."""
        if self._events is None:
            return
        try:
            if feed.event_seq is None:
                feed.event_seq = await self._events.last_seq(feed.account)  # from now: resumption replays history
                return
            while True:  # a burst (a cancel-all, a sweep of fills) goes in chunks a fast client drains between
                batch = await self._events.after(feed.account, feed.event_seq, limit=EVENT_CHUNK)
                for seq, frame in batch:
                    feed.event_seq = seq
                    self._publish(feed, frame)
                    await self._relay_frame(feed, frame, keep_latest=False)
                if len(batch) < EVENT_CHUNK or not feed.subscribers:
                    break
                await asyncio.sleep(EVENT_CHUNK_PAUSE_S)
        except Exception:
            log.exception("live stream of %s: events not read", feed.account)

    async def _relay_frame(self, feed: _Feed, frame: str, *, keep_latest: bool = True) -> None:
        if self._relay is None or not feed.followed:
            return
        try:
            await self._relay.publish(feed.account, frame, keep_latest=keep_latest)
        except Exception as exc:
            log.warning("live stream of %s: frame not relayed (%s)", feed.account, type(exc).__name__)

    async def _catch_up(self, feed: _Feed) -> None:
        """A newcomer on a replica that does not compute: the account's latest frame, if there is one."""
        assert self._relay is not None
        try:
            latest = await self._relay.latest(feed.account)
        except Exception:
            return
        if latest is not None and feed.latest is None:
            feed.latest = latest
            self._publish(feed, latest)

    def _relayed(self, feed: _Feed, frame: str) -> None:
        """A frame another replica computed for this account."""
        if self._feeds.get(feed.account) is not feed:
            return
        if (seq := event_seq(frame)) is not None:
            if feed.event_seq is None or seq > feed.event_seq:
                feed.event_seq = seq  # should this replica produce next, it goes on from here
                self._publish(feed, frame)
            return
        if frame != feed.latest:
            feed.latest = frame
            self._publish(feed, frame)

    async def _next_frame(self, feed: _Feed) -> tuple[str, bool]:
        """The newest frame for ``feed`` and whether it differs from what subscribers last got."""
        try:
            async with asyncio.timeout(self._compute_timeout_s):
                snapshot = await self._compute(feed.account)
        except Exception as exc:
            frame = _error_frame(feed.account, _client_detail(exc))
            feed.digest = None  # after an error, the next snapshot is news even if unchanged
            changed = frame != feed.latest
            if changed:
                log.exception("live snapshot of %s failed", feed.account)
            else:
                log.debug("live snapshot of %s failed again: %s", feed.account, type(exc).__name__)
            return frame, changed
        # A digest, not the dump: the feed keeps one full frame, not two.
        comparable = snapshot.model_dump_json(exclude=self._volatile).encode()
        digest = hashlib.blake2b(comparable, digest_size=16).digest()
        changed = digest != feed.digest
        feed.digest = digest
        return _snapshot_frame(feed.account, snapshot.model_dump_json()), changed

    def _publish(self, feed: _Feed, frame: str) -> None:
        """Offer ``frame`` to every subscriber without waiting; drop those too far behind: ``queue_size``
        snapshots waiting, or a full queue (room for ``EVENT_BACKLOG`` events besides)."""
        snapshot = not frame.startswith(_EVENT_PREFIX)
        slow = []
        for subscriber in feed.subscribers:
            if snapshot and subscriber.snapshots_queued >= self.queue_size:
                slow.append(subscriber)
                continue
            try:
                subscriber.queue.put_nowait(frame)
            except asyncio.QueueFull:
                slow.append(subscriber)
                continue
            subscriber.snapshots_queued += snapshot
        for subscriber in slow:
            feed.subscribers.discard(subscriber)
            subscriber.end(_TOO_SLOW)
        if slow:
            LIVE_DROPPED.inc(len(slow))
            log.info("live stream of %s: dropped %d slow subscriber(s)", feed.account, len(slow))


class _Feed:
    """One account's producer and its subscribers."""

    __slots__ = ("account", "computing", "digest", "event_seq", "followed", "latest", "subscribers", "task")

    def __init__(self, account: str) -> None:
        self.account = account
        self.subscribers: set[_Subscriber] = set()
        self.task: asyncio.Task[None]
        self.latest: str | None = None  # the newest frame, sent to each newcomer
        self.digest: bytes | None = None  # of the last published snapshot, volatile fields left out
        self.computing = False
        self.followed = False  # subscribed to the relay's frames for this account
        self.event_seq: int | None = None  # the last event published


class _Subscriber:
    """One client's bounded queue, and why its stream ended."""

    __slots__ = ("ended", "feed", "handler", "queue", "replayed_through", "sending", "snapshots_queued", "why")

    def __init__(self, feed: _Feed, queue_size: int) -> None:
        self.feed = feed
        # Snapshots are bounded by queue_size (each supersedes the last: a client that far behind is slow);
        # events are never folded, so a burst of them has room of its own.
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size + EVENT_BACKLOG)
        self.snapshots_queued = 0
        self.handler = asyncio.current_task()
        self.sending: asyncio.Timeout | None = None
        self.ended = False
        self.why: CloseReason | None = None  # None: the client left, or the send failed
        self.replayed_through: int | None = None  # a resuming client: the last event the replay sent

    def end(self, why: CloseReason | None) -> None:
        """End the stream: discard what is queued, wake the reader, interrupt a pending send."""
        if self.ended:
            return
        self.ended = True
        self.why = why
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_WAKE)
        if self.sending is not None:
            self.sending.reschedule(asyncio.get_running_loop().time())

    def on_peer_gone(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.debug("live stream: waiting for a client to leave failed", exc_info=task.exception())
        self.end(None)


_EVENT_PREFIX = '{"type":"event",'
_SEQ = re.compile(r'"seq":(\d+)')


def event_frame(account: str, seq: int, kind: str, payload: dict[str, object]) -> str:
    """``{"type": "event", "seq": n, "account", "kind": "order" | "fill", "data"}``: one per order transition
    or fill, numbered per account without gaps."""
    body = json.dumps({"account": account, "kind": kind, "data": payload}, separators=(",", ":"))
    return f'{_EVENT_PREFIX}"seq":{seq},{body[1:]}'


def event_seq(frame: str) -> int | None:
    """The sequence number of an event frame; None for snapshots and errors."""
    if not frame.startswith(_EVENT_PREFIX):
        return None
    found = _SEQ.search(frame, len(_EVENT_PREFIX), len(_EVENT_PREFIX) + 32)
    return int(found.group(1)) if found else None


def _snapshot_frame(account: str, data_json: str) -> str:
    return f'{{"type":"snapshot","account":{json.dumps(account)},"data":{data_json}}}'


def _error_frame(account: str, detail: str) -> str:
    return json.dumps({"type": "error", "account": account, "detail": detail}, separators=(",", ":"))


def _client_detail(exc: Exception) -> str:
    """What a client may read about a failure: a domain error's safe detail, else nothing specific."""
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, TimeoutError):
        return "live snapshot timed out; retrying"
    return "live snapshot unavailable; retrying"


class StoredEvents:
    """An `EventFeed` over the store's numbered events."""

    def __init__(self, store: EventSource) -> None:
        self._store = store

    async def last_seq(self, account: str) -> int:
        return await self._store.last_seq(account)

    async def after(self, account: str, seq: int, *, limit: int = 1000) -> list[tuple[int, str]]:
        events = await self._store.after(account, seq, limit=limit)
        return [(e.seq, event_frame(e.account, e.seq, e.kind, e.payload)) for e in events]
