"""LiveHub with fake peers and a fake compute: shared computation, change-only publishing, slow consumers
dropped, errors as frames, and nothing left behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from aiotrade.errors import DomainError
from aiotrade.stream.hub import CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, CLOSE_UNKNOWN_ACCOUNT, LiveHub, event_frame

INTERVAL = 0.02


class Snapshot(BaseModel):
    account: str
    equity: int
    timestamp: datetime


class FakeCompute:
    """Counts calls and overlaps; returns ``equity`` (or raises ``error``) after ``delay_s``."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.equity = 100
        self.bump_each_call = False
        self.error: Exception | None = None
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0
        self.completed = 0

    async def __call__(self, account: str) -> Snapshot:
        self.calls.append(account)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.error is not None:
                raise self.error
            if self.bump_each_call:
                self.equity += 1
            self.completed += 1
            return Snapshot(account=account, equity=self.equity, timestamp=datetime.now(UTC))
        finally:
            self.active -= 1


class FakePeer:
    """An accepted client: records frames and its close; ``stall()`` makes sends hang like a full socket."""

    def __init__(self) -> None:
        self.raw: list[str] = []
        self.closed: tuple[int, str] | None = None
        self._gone = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(frame) for frame in self.raw]

    def stall(self) -> None:
        self._writable.clear()

    def leave(self) -> None:
        self._gone.set()

    async def send_text(self, data: str) -> None:
        await self._writable.wait()
        if self._gone.is_set():
            raise ConnectionError("gone")
        self.raw.append(data)

    async def close(self, code: int, reason: str) -> None:
        if self._gone.is_set():
            raise ConnectionError("gone")
        self.closed = (code, reason)
        self._gone.set()

    async def wait_closed(self) -> None:
        await self._gone.wait()


async def eventually(predicate: Callable[[], bool], within_s: float = 2.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 -- polls state the test does not own
            await asyncio.sleep(0.002)


def live_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("aiotrade-live")]


def make_hub(compute: FakeCompute, **kwargs: Any) -> LiveHub:
    options: dict[str, Any] = {"accounts": {"main", "other"}, "default_account": "main", "interval_s": INTERVAL}
    return LiveHub(compute, **(options | kwargs))


Stream = tuple[FakePeer, asyncio.Task[None]]


async def subscribe(hub: LiveHub, count: int, account: str | None = "main") -> list[Stream]:
    peers = [FakePeer() for _ in range(count)]
    return [(peer, asyncio.create_task(hub.serve(peer, account))) for peer in peers]


async def leave_all(streams: list[Stream]) -> None:
    for peer, _ in streams:
        peer.leave()
    await asyncio.gather(*(task for _, task in streams))


async def assert_empty(hub: LiveHub) -> None:
    await eventually(lambda: not hub.streaming() and hub.open_streams() == 0 and not live_tasks())


async def test_hundred_subscribers_share_one_computation_per_interval() -> None:
    compute = FakeCompute()
    compute.bump_each_call = True
    hub = make_hub(compute)
    streams = await subscribe(hub, 100)
    await eventually(lambda: all(peer.raw for peer, _ in streams))
    calls_before = len(compute.calls)
    await asyncio.sleep(10 * INTERVAL)

    # At most one computation per interval for all 100 (one more for timer slack), never overlapping.
    assert len(compute.calls) - calls_before <= 11
    assert compute.max_active == 1
    assert hub.subscribers("main") == 100
    # Serialised once: every subscriber got the very same string object.
    first = streams[0][0].raw[0]
    assert all(peer.raw[0] is first for peer, _ in streams)
    await leave_all(streams)
    await assert_empty(hub)


async def test_frames_carry_type_account_and_the_model_json() -> None:
    compute = FakeCompute()
    hub = make_hub(compute)
    [(peer, task)] = await subscribe(hub, 1)
    await eventually(lambda: bool(peer.raw))
    frame = peer.frames[0]
    assert frame["type"] == "snapshot" and frame["account"] == "main"
    assert frame["data"]["equity"] == 100 and frame["data"]["account"] == "main"
    assert datetime.fromisoformat(frame["data"]["timestamp"]).tzinfo is not None
    await leave_all([(peer, task)])


async def test_publishes_only_when_the_snapshot_changes_ignoring_volatile_fields() -> None:
    compute = FakeCompute()
    hub = make_hub(compute)
    [(peer, task)] = await subscribe(hub, 1)
    await eventually(lambda: len(compute.calls) >= 8)
    # The timestamp moved on every computation; nothing else did.
    assert len(peer.raw) == 1

    compute.equity = 250
    await eventually(lambda: len(peer.raw) == 2)
    assert peer.frames[1]["data"]["equity"] == 250
    calls = len(compute.calls)
    await eventually(lambda: len(compute.calls) >= calls + 5)
    assert len(peer.raw) == 2
    await leave_all([(peer, task)])


async def test_volatile_fields_are_configurable() -> None:
    compute = FakeCompute()
    hub = make_hub(compute, volatile=())
    [(peer, task)] = await subscribe(hub, 1)
    # With nothing excluded, the moving timestamp is a change every time.
    await eventually(lambda: len(peer.raw) >= 3)
    await leave_all([(peer, task)])


async def test_newcomer_gets_the_latest_snapshot_at_once_without_a_computation() -> None:
    compute = FakeCompute()
    hub = make_hub(compute, interval_s=5.0)
    first = await subscribe(hub, 1)
    await eventually(lambda: bool(first[0][0].raw))
    assert len(compute.calls) == 1

    second = await subscribe(hub, 1)
    await eventually(lambda: bool(second[0][0].raw), within_s=0.5)
    assert len(compute.calls) == 1
    assert second[0][0].raw == first[0][0].raw
    await leave_all(first + second)
    await assert_empty(hub)


async def test_first_subscriber_waits_for_the_first_computation() -> None:
    compute = FakeCompute(delay_s=0.1)
    hub = make_hub(compute)
    [(peer, task)] = await subscribe(hub, 1)
    await asyncio.sleep(0.05)
    assert peer.raw == []
    await eventually(lambda: bool(peer.raw))
    await leave_all([(peer, task)])
    await assert_empty(hub)


async def test_slow_subscriber_is_dropped_while_fast_ones_continue() -> None:
    compute = FakeCompute()
    compute.bump_each_call = True  # a new snapshot every interval
    hub = make_hub(compute, queue_size=2)
    fast = await subscribe(hub, 3)
    [(slow, slow_task)] = await subscribe(hub, 1)
    await eventually(lambda: bool(slow.raw))
    slow.stall()

    await eventually(lambda: slow.closed is not None)
    assert slow.closed is not None and slow.closed[0] == CLOSE_TOO_SLOW and slow.closed[1]
    await slow_task  # its pending send was interrupted: the stream ends without the socket draining
    assert hub.subscribers("main") == 3

    received = [len(peer.raw) for peer, _ in fast]
    await eventually(lambda: all(len(peer.raw) >= n + 3 for n, (peer, _) in zip(received, fast, strict=True)))
    frames = fast[0][0].frames
    assert [f["data"]["equity"] for f in frames] == sorted({f["data"]["equity"] for f in frames})
    await leave_all(fast)
    await assert_empty(hub)


async def test_last_subscriber_leaving_stops_the_producer_and_removes_all_state() -> None:
    compute = FakeCompute()
    hub = make_hub(compute)
    streams = await subscribe(hub, 5) + await subscribe(hub, 2, "other")
    await eventually(lambda: all(peer.raw for peer, _ in streams))
    assert hub.streaming() == {"main", "other"}

    await leave_all(streams[:4])
    assert hub.subscribers("main") == 1
    await leave_all(streams[4:5])
    assert hub.streaming() == {"other"}
    await leave_all(streams[5:])

    # The producer sleeps between computations, so it stops at once: serve() returns with nothing left.
    assert not hub.streaming() and hub.open_streams() == 0 and not live_tasks()
    calls = len(compute.calls)
    await asyncio.sleep(5 * INTERVAL)
    assert len(compute.calls) == calls


async def test_leaving_during_a_computation_lets_it_finish_and_rejoining_never_overlaps() -> None:
    compute = FakeCompute(delay_s=0.1)
    hub = make_hub(compute)
    first = await subscribe(hub, 1)
    await eventually(lambda: compute.active == 1)
    await leave_all(first)
    assert hub.open_streams() == 0

    # Rejoining while the orphaned computation runs reuses the same producer.
    second = await subscribe(hub, 1)
    await eventually(lambda: bool(second[0][0].raw))
    assert compute.max_active == 1 and compute.completed >= 1
    await leave_all(second)
    await assert_empty(hub)
    assert compute.active == 0 and compute.max_active == 1


async def test_compute_slower_than_the_interval_is_never_called_concurrently() -> None:
    compute = FakeCompute(delay_s=3 * INTERVAL)
    hub = make_hub(compute)
    streams = await subscribe(hub, 10)
    await eventually(lambda: len(compute.calls) >= 4)
    assert compute.max_active == 1
    await leave_all(streams)
    await assert_empty(hub)


async def test_compute_errors_become_error_frames_and_the_stream_recovers(caplog: pytest.LogCaptureFixture) -> None:
    compute = FakeCompute()
    hub = make_hub(compute)
    [(peer, task)] = await subscribe(hub, 1)
    await eventually(lambda: len(peer.raw) == 1)

    compute.error = RuntimeError("api secret s3cr3t rejected")
    await eventually(lambda: len(peer.raw) == 2)
    error = peer.frames[1]
    assert error == {"type": "error", "account": "main", "detail": "live snapshot unavailable; retrying"}
    assert "s3cr3t" not in peer.raw[1] and "Traceback" not in peer.raw[1]
    assert "live snapshot of main failed" in caplog.text

    # The same failure again is not news; a different one is, with a domain error's safe detail.
    calls = len(compute.calls)
    await eventually(lambda: len(compute.calls) >= calls + 3)
    assert len(peer.raw) == 2
    compute.error = DomainError("exchange unavailable")
    await eventually(lambda: len(peer.raw) == 3)
    assert peer.frames[2]["detail"] == "exchange unavailable"

    # Recovery republishes even an unchanged snapshot, since the client last saw an error.
    compute.error = None
    await eventually(lambda: len(peer.raw) == 4)
    assert peer.frames[3]["type"] == "snapshot" and peer.frames[3]["data"]["equity"] == 100
    await leave_all([(peer, task)])
    await assert_empty(hub)


async def test_newcomer_during_an_outage_gets_the_error_frame() -> None:
    compute = FakeCompute()
    compute.error = RuntimeError("boom")
    hub = make_hub(compute, interval_s=5.0)
    first = await subscribe(hub, 1)
    await eventually(lambda: bool(first[0][0].raw))
    second = await subscribe(hub, 1)
    await eventually(lambda: bool(second[0][0].raw), within_s=0.5)
    assert second[0][0].frames[0]["type"] == "error"
    await leave_all(first + second)


async def test_compute_timeout_is_an_error_frame() -> None:
    compute = FakeCompute(delay_s=1.0)
    hub = make_hub(compute, compute_timeout_s=0.05)
    [(peer, task)] = await subscribe(hub, 1)
    await eventually(lambda: bool(peer.raw))
    assert peer.frames[0] == {"type": "error", "account": "main", "detail": "live snapshot timed out; retrying"}
    await leave_all([(peer, task)])
    await assert_empty(hub)


async def test_unknown_account_is_closed_with_1008_before_any_computation() -> None:
    compute = FakeCompute()
    hub = make_hub(compute)
    [(peer, task)] = await subscribe(hub, 1, "nobody")
    await task
    assert peer.closed is not None and peer.closed[0] == CLOSE_UNKNOWN_ACCOUNT and peer.closed[1]
    assert compute.calls == [] and peer.raw == []
    await assert_empty(hub)


async def test_omitted_account_means_the_default_account() -> None:
    compute = FakeCompute()
    hub = make_hub(compute, default_account="other")
    streams = await subscribe(hub, 1, None) + await subscribe(hub, 1, "")
    await eventually(lambda: all(peer.raw for peer, _ in streams))
    assert set(compute.calls) == {"other"}
    await leave_all(streams)


async def test_omitted_account_without_a_default_is_refused() -> None:
    compute = FakeCompute()
    hub = make_hub(compute, default_account=None)
    [(peer, task)] = await subscribe(hub, 1, None)
    await task
    assert peer.closed is not None and peer.closed[0] == CLOSE_UNKNOWN_ACCOUNT
    assert compute.calls == []


async def test_accounts_may_be_a_predicate() -> None:
    compute = FakeCompute()
    hub = LiveHub(compute, accounts=lambda name: name.startswith("sub-"), interval_s=INTERVAL)
    good = await subscribe(hub, 1, "sub-1")
    bad = await subscribe(hub, 1, "main")
    await bad[0][1]
    await eventually(lambda: bool(good[0][0].raw))
    assert bad[0][0].closed is not None and bad[0][0].closed[0] == CLOSE_UNKNOWN_ACCOUNT
    await leave_all(good)


async def test_close_stops_every_producer_and_closes_every_stream() -> None:
    compute = FakeCompute(delay_s=0.01)
    hub = make_hub(compute)
    streams = await subscribe(hub, 10) + await subscribe(hub, 3, "other")
    stalled = await subscribe(hub, 1)
    await eventually(lambda: all(peer.raw for peer, _ in streams + stalled))
    stalled[0][0].stall()
    compute.equity += 1
    await eventually(lambda: compute.active >= 1)  # closing cuts a computation off

    await hub.close()
    assert all(task.done() for _, task in streams + stalled)
    assert all(peer.closed is not None and peer.closed[0] == CLOSE_GOING_AWAY for peer, _ in streams + stalled)
    assert not hub.streaming() and hub.open_streams() == 0 and not live_tasks()

    # A client arriving after close is turned away at once.
    late = await subscribe(hub, 1)
    await late[0][1]
    assert late[0][0].closed is not None and late[0][0].closed[0] == CLOSE_GOING_AWAY


async def test_hub_is_an_async_context_manager() -> None:
    compute = FakeCompute()
    async with make_hub(compute) as hub:
        streams = await subscribe(hub, 2)
        await eventually(lambda: all(peer.raw for peer, _ in streams))
    assert all(task.done() for _, task in streams) and not live_tasks()


def test_configuration_is_validated() -> None:
    compute = FakeCompute()
    with pytest.raises(ValueError, match="default_account"):
        LiveHub(compute, accounts={"main"}, default_account="ghost")
    with pytest.raises(ValueError, match="interval_s"):
        LiveHub(compute, accounts={"main"}, interval_s=0)
    with pytest.raises(ValueError, match="queue_size"):
        LiveHub(compute, accounts={"main"}, queue_size=0)
    with pytest.raises(TypeError):
        LiveHub(compute, accounts="main")


class BurstEvents:
    """An event feed to which a test appends events in bursts."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def burst(self, count: int) -> None:
        start = len(self.frames)
        self.frames += [event_frame("main", start + i + 1, "order", {"n": start + i}) for i in range(count)]

    async def last_seq(self, account: str) -> int:
        return len(self.frames)

    async def after(self, account: str, seq: int, *, limit: int = 1000) -> list[tuple[int, str]]:
        return [(i + 1, frame) for i, frame in enumerate(self.frames) if i + 1 > seq][:limit]


async def test_a_burst_of_events_reaches_a_client_that_keeps_reading_and_drops_one_that_stalls() -> None:
    """Events are never folded: a burst far larger than the snapshot queue (a cancel-all, a sweep of fills)
    must not drop a subscriber that keeps reading; one that has stopped reading is still dropped."""
    events = BurstEvents()
    hub = make_hub(FakeCompute(), queue_size=2, events=events)
    [(reader, reader_task)] = await subscribe(hub, 1)
    [(stalled, stalled_task)] = await subscribe(hub, 1)
    await eventually(lambda: bool(reader.raw) and bool(stalled.raw))
    await asyncio.sleep(3 * INTERVAL)  # the producer has read the feed's position
    stalled.stall()
    events.burst(1_000)
    await eventually(lambda: sum(f["type"] == "event" for f in reader.frames) == 1_000, within_s=10)
    assert reader.closed is None
    assert [f["seq"] for f in reader.frames if f["type"] == "event"] == list(range(1, 1_001))
    await eventually(lambda: stalled.closed is not None)
    assert stalled.closed is not None and stalled.closed[0] == CLOSE_TOO_SLOW
    await stalled_task
    await leave_all([(reader, reader_task)])
    await assert_empty(hub)
