"""The trading state's first write races safely: two writers that both find no row (the loss-limit monitor and
an operator, two replicas, the kill switch in the gate's critical section) both succeed, and the more severe
state wins an escalation."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.models.risk import TradingState
from aiotrade.store.gate import GateStore
from aiotrade.store.risk import RiskStore

# Fresh accounts per round: the insert race exists only while no row does, and one round may miss it.
ROUNDS = 20


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


async def test_halt_racing_the_first_loss_limit_escalation_both_succeed_and_halted_stands(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    gate, risk = GateStore(sessions), RiskStore(sessions)
    for round_ in range(ROUNDS):
        account = f"halt-escalate-{round_}"
        halted, escalated = await asyncio.gather(
            gate.set_trading_state(account, TradingState.HALTED, "kill switch"),
            risk.escalate(account, TradingState.REDUCING, "daily loss"),
            return_exceptions=True,
        )
        assert not isinstance(halted, BaseException), halted
        assert not isinstance(escalated, BaseException), escalated
        assert halted.state is TradingState.HALTED
        # The escalation either went first (REDUCING, then overridden) or found the halt and left it.
        assert escalated.state in (TradingState.REDUCING, TradingState.HALTED)
        final = await risk.trading_state(account)
        assert (final.state, final.reason) == (TradingState.HALTED, "kill switch")


async def test_halt_racing_an_operators_first_write_both_succeed_and_the_last_writer_stands(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    gate, risk = GateStore(sessions), RiskStore(sessions)
    for round_ in range(ROUNDS):
        account = f"halt-operator-{round_}"
        results = await asyncio.gather(
            gate.set_trading_state(account, TradingState.HALTED, "kill switch"),
            risk.set_trading_state(account, TradingState.REDUCING, "operator"),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        halted, set_by_operator = results
        assert (halted.state, halted.reason) == (TradingState.HALTED, "kill switch")
        assert (set_by_operator.state, set_by_operator.reason) == (TradingState.REDUCING, "operator")
        # A plain set overrides whatever is there: the row holds one of the two writes, whole.
        final = await risk.trading_state(account)
        assert (final.state, final.reason) in {(r.state, r.reason) for r in results}
        assert final.changed_at in {r.changed_at for r in results}
