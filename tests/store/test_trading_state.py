"""The trading state's first write races safely: two writers that both find no row (the loss-limit monitor and
an operator, two replicas) both succeed, and the more severe state wins an escalation."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.risk import TradingState
from aiotrade.store.risk import RiskStore


async def test_concurrent_first_escalations_both_succeed_and_the_most_severe_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = RiskStore(sessions)
    for round_ in range(5):
        account = f"acct-{round_}"
        results = await asyncio.gather(
            store.escalate(account, TradingState.REDUCING, "daily loss"),
            store.escalate(account, TradingState.HALTED, "drawdown"),
            store.set_trading_state(account, TradingState.HALTED, "operator"),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert (await store.trading_state(account)).state is TradingState.HALTED
