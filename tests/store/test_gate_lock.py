"""The gate's critical section is per account: on PostgreSQL an advisory lock keyed by the account, so one
account's lock (held by another replica) never holds up another account's orders."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from aiotrade.models.risk import TradingState
from aiotrade.store.db import make_engine, make_sessions
from aiotrade.store.gate import GateStore, account_lock_key
from tests.support.databases import migrated_engine


async def test_an_accounts_lock_held_by_another_replica_holds_up_that_account_only(postgres_url: str) -> None:
    engine = await migrated_engine(postgres_url)
    other_replica = make_engine(postgres_url)
    gate = GateStore(make_sessions(engine))
    try:
        async with other_replica.begin() as held:  # another replica inside account A's critical section
            await held.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": account_lock_key("A")})
            async with asyncio.timeout(5):
                other = await gate.set_trading_state("B", TradingState.HALTED, "kill switch")  # not held up
            assert other.state is TradingState.HALTED
            waiting = asyncio.create_task(gate.set_trading_state("A", TradingState.HALTED, "kill switch"))
            done, _ = await asyncio.wait({waiting}, timeout=0.5)
            assert not done  # A waits for the lock its critical section needs
        async with asyncio.timeout(5):  # released with the other replica's transaction
            assert (await waiting).state is TradingState.HALTED
    finally:
        await other_replica.dispose()
        await engine.dispose()
