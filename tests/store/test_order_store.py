"""The order store's guarantees, on SQLite and on a real PostgreSQL server alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade.domain.records import VenueFill
from aiotrade.models.orders import IllegalTransition, OrderStatus
from aiotrade.store.db import make_sessions
from aiotrade.store.orders import ClaimKind, NewOrder, OrderFilter, OrderStore
from tests.support.databases import database_url, migrated_engine

LEASE, KEEP = timedelta(seconds=60), timedelta(hours=24)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OrderStore]:
    engine = await migrated_engine(database_url(request, request.param, tmp_path))
    yield OrderStore(make_sessions(engine))
    await engine.dispose()


def pending(client_order_id: str) -> NewOrder:
    return NewOrder(
        account="paper", venue="paper", client_order_id=client_order_id, symbol="BTC/USDT", side="buy",
        type="market", time_in_force=None, amount=Decimal("0.001"), quote_amount=None, price=None,
    )  # fmt: skip


async def claim(store: OrderStore, key: str, body: str = "h1", lease: timedelta = LEASE):
    return await store.claim_key(
        "paper", key, request_hash=body, client_order_id="c-" + key, lease=lease, retention=KEEP
    )


async def test_a_key_is_claimed_once_among_concurrent_requests(store: OrderStore) -> None:
    claims = await asyncio.gather(*(claim(store, "k1") for _ in range(8)))
    kinds = sorted(c.kind for c in claims)
    assert kinds.count(ClaimKind.NEW) == 1
    assert set(kinds) <= {ClaimKind.NEW, ClaimKind.IN_FLIGHT}


async def test_key_lifecycle_replay_mismatch_and_takeover(store: OrderStore) -> None:
    assert (await claim(store, "k2")).kind is ClaimKind.NEW
    assert (await claim(store, "k2", body="other")).kind is ClaimKind.MISMATCH
    first = await claim(store, "k2-owner")
    await store.complete_key("paper", "k2-owner", owner="someone-else", status=201, body={})  # not the holder
    assert (await claim(store, "k2-owner")).kind is ClaimKind.IN_FLIGHT
    await store.complete_key("paper", "k2-owner", owner=first.owner, status=201, body={})
    assert (await claim(store, "k2-owner")).kind is ClaimKind.REPLAY
    holder = await store.claim_key("paper", "k2b", request_hash="h1", client_order_id="x", lease=LEASE, retention=KEEP)
    await store.complete_key("paper", "k2b", owner=holder.owner, status=201, body={"id": "c-k2"})
    replay = await store.claim_key("paper", "k2b", request_hash="h1", client_order_id="x", lease=LEASE, retention=KEEP)
    assert (replay.kind, replay.response_status, replay.response_body) == (ClaimKind.REPLAY, 201, {"id": "c-k2"})

    stale = await claim(store, "k3", lease=timedelta(0))
    assert stale.kind is ClaimKind.NEW
    taken = await claim(store, "k3")
    assert taken.kind is ClaimKind.TAKEOVER and taken.owner != stale.owner  # the first holder's lease lapsed
    await store.release_key("paper", "k3", owner=stale.owner, forget=True)  # the stale holder changes nothing
    assert (await claim(store, "k3")).kind is ClaimKind.IN_FLIGHT
    assert await store.renew_key("paper", "k3", owner=taken.owner, lease=LEASE)
    assert not await store.renew_key("paper", "k3", owner=stale.owner, lease=LEASE)
    await store.release_key("paper", "k3", owner=taken.owner, forget=True)
    assert (await claim(store, "k3")).kind is ClaimKind.NEW


async def test_transitions_are_checked_and_fills_deduplicated(store: OrderStore) -> None:
    row, inserted = await store.insert_pending(pending("o1"))
    again, inserted_again = await store.insert_pending(pending("o1"))
    assert inserted and not inserted_again and again.row_id == row.row_id  # same client id: the same row
    opened = await store.transition("paper", "o1", OrderStatus.OPEN, event="placed", exchange_order_id="77")
    assert opened is not None and opened.placed_at is not None  # acknowledged by the exchange now
    with pytest.raises(IllegalTransition):
        await store.transition("paper", "o1", OrderStatus.PENDING)
    assert [e.event for e in await store.audit_trail("paper", "o1")] == ["create_requested", "placed"]
    fill = VenueFill(
        "t1", "77", "BTC/USDT", "buy", Decimal("50000"), Decimal("0.001"), Decimal("50"), None, None, "taker",
        datetime.now(UTC),
    )  # fmt: skip
    assert await store.record_fills(row, [fill, fill]) == 1
    assert await store.record_fills(row, [fill]) == 0
    assert (await store.find("paper", "77")).client_order_id == "o1"  # by the exchange's id too


async def test_history_pages_newest_first_with_filters(store: OrderStore) -> None:
    for i in range(7):
        await store.insert_pending(pending(f"h{i}"))
    await store.transition("paper", "h3", OrderStatus.FILLED)
    seen, cursor = [], None
    while True:
        rows, cursor = await store.list("paper", OrderFilter(), cursor=cursor, limit=3)
        seen += [r.client_order_id for r in rows]
        if cursor is None:
            break
    assert seen == [f"h{i}" for i in reversed(range(7))]
    filled, _ = await store.list("paper", OrderFilter(statuses=(OrderStatus.FILLED,)), cursor=None, limit=10)
    assert [r.client_order_id for r in filled] == ["h3"]
    with pytest.raises(ValueError):
        await store.list("paper", OrderFilter(), cursor="not-ours", limit=3)
