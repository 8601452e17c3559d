"""The pre-trade gate: mandatory for every order, serialised per account, and only for milliseconds.

`RiskGate` is built once at start-up and handed to order placement as a required collaborator; there is
no way to place an order around it. For each order it
1. reads what the account's limits need from the exchange — balances, prices, open orders — and the
   equity baseline and peak from the store, concurrently and *before* taking any lock;
2. brings the order to the market's precision and checks the market's filters, once;
3. in one short critical section per account (`store/gate.py`), counts what other orders of the account
   are doing (in flight, submitted in the last minute, the trading state), judges (`rules.judge`) and,
   if approved, records the order as PENDING — so concurrent orders can never all pass together.
`validate` runs the same reads and rules without the lock and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiotrade import errors as domain
from aiotrade.domain import market_rules
from aiotrade.domain.market_rules import PreparedOrder
from aiotrade.domain.records import VenueOrder
from aiotrade.domain.valuation import Valuation
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.account import Balances
from aiotrade.models.market import Market, Ticker
from aiotrade.models.orders import CreateOrderRequest
from aiotrade.models.risk import RiskLimits, TradeValidation, TradingState
from aiotrade.services.risk.rules import AccountView, Candidate, Judgement, judge
from aiotrade.store.gate import Admission, GateStore, KeyToForget
from aiotrade.store.orders import NewOrder, StoredOrder
from aiotrade.store.risk import RiskStore

# Orders acknowledged this long before we started reading are looked at too (another replica's clock may
# run behind ours); whether the balances read include each is then decided on the venue's own clock.
CLOCK_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Admitted:
    """The gate's yes: the order as prepared, recorded as PENDING (or found recorded already)."""

    prepared: PreparedOrder | None  # None when an earlier attempt had recorded it (nothing was judged)
    order: StoredOrder
    existing: bool


@dataclass(frozen=True, slots=True)
class AdmittedList:
    """The gate's yes to an order list: its legs as prepared, all recorded as PENDING (or found recorded)."""

    prepared: tuple[PreparedOrder, ...] | None  # None when an earlier attempt had recorded them
    orders: tuple[StoredOrder, ...]
    existing: bool


class RiskGate:
    """The mandatory pre-trade check; see the module docstring."""

    def __init__(self, gateway: ExchangeGateway, risk_store: RiskStore, gate_store: GateStore) -> None:
        self._gateway = gateway
        self._risk = risk_store
        self._store = gate_store

    async def trading_state(self, account: str) -> TradingState:
        return (await self._risk.trading_state(account)).state

    async def validate(self, account: str, orders: Sequence[CreateOrderRequest]) -> TradeValidation:
        """Judge a batch against the market's filters, the limits and the state; writes nothing.

        Balances are consumed cumulatively across the batch, after those of orders still in flight.
        """
        venue = self._gateway.venue_of(account)
        limits = await self._risk.limits(account)
        markets = await self._gateway.require(venue, [o.symbol for o in orders])
        view = await self._observe(account, venue, markets, limits, [o.symbol for o in orders])
        candidates = [_candidate(markets[o.symbol], o, view) for o in orders]
        inputs = await self._store.inputs(account, view_started_at=view.started_at - CLOCK_MARGIN)
        verdict = judge(candidates, limits, view, inputs)
        return TradeValidation(
            account=account,
            approved=verdict.approved,
            violations=verdict.violations,
            trading_state=verdict.state,
            checked_at=datetime.now(UTC),
        )

    async def admit(
        self,
        account: str,
        request: CreateOrderRequest,
        record: Callable[[PreparedOrder], NewOrder],
        *,
        forget_on_refusal: KeyToForget | None = None,
        first_events: Sequence[tuple[str, dict[str, object]]] = (),
    ) -> Admitted:
        """Judge one order and, if approved, record it as PENDING, atomically for its account.

        Raises `InvalidInput` for a breach of the market's filters (naming the field) and `RiskRejected`
        with every violated rule otherwise. ``record`` makes the row from the prepared order; the audit gets
        "create_requested" and then ``first_events``, in the same transaction.
        """
        venue = self._gateway.venue_of(account)
        limits = await self._risk.limits(account)
        markets = await self._gateway.require(venue, [request.symbol])
        view = await self._observe(account, venue, markets, limits, [request.symbol])
        if view.unavailable is not None:  # the venue is away: a 503 to retry later, not the order's fault
            raise view.unavailable
        candidate = _candidate(markets[request.symbol], request, view)
        if candidate.breaches:
            problems = [domain.InvalidParam(b.field, f"{b.reason} ({b.code})") for b in candidate.breaches]
            raise domain.InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in problems), invalid_params=problems)
        admission: Admission[Judgement] = await self._store.admit(
            record(candidate.prepared),
            view_started_at=view.started_at - CLOCK_MARGIN,
            decide=lambda inputs: judge([candidate], limits, view, inputs),
            approved=lambda verdict: verdict.approved,
            forget_on_refusal=forget_on_refusal,
            events=[("create_requested", _describe(candidate.prepared)), *first_events],
        )
        if admission.order is None:
            assert admission.verdict is not None
            violations = admission.verdict.violations
            raise domain.RiskRejected(
                "refused by the pre-trade risk gate: " + ", ".join(v.code for v in violations),
                invalid_params=[domain.InvalidParam(v.code, v.message) for v in violations],
            )
        prepared = None if admission.existing else candidate.prepared
        return Admitted(prepared=prepared, order=admission.order, existing=admission.existing)

    async def admit_list(
        self,
        account: str,
        legs: Sequence[CreateOrderRequest],
        record: Callable[[Sequence[PreparedOrder]], Sequence[NewOrder]],
        *,
        forget_on_refusal: KeyToForget | None = None,
        first_events: Sequence[tuple[str, dict[str, object]]] = (),
    ) -> AdmittedList:
        """`admit` for the legs of an order list of which at most one executes (an OCO): every leg is judged
        and counts against the limits (its notional, open orders, the submit rate), each funded from the same
        balances; all are recorded as PENDING in one critical section, or none."""
        venue = self._gateway.venue_of(account)
        limits = await self._risk.limits(account)
        symbols = sorted({leg.symbol for leg in legs})
        markets = await self._gateway.require(venue, symbols)
        view = await self._observe(account, venue, markets, limits, symbols)
        if view.unavailable is not None:  # the venue is away: a 503 to retry later, not the order's fault
            raise view.unavailable
        candidates = [_candidate(markets[leg.symbol], leg, view) for leg in legs]
        problems = [
            domain.InvalidParam(f"legs[{i}].{b.field}", f"{b.reason} ({b.code})")
            for i, c in enumerate(candidates)
            for b in c.breaches
        ]
        if problems:
            raise domain.InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in problems), invalid_params=problems)
        prepared = tuple(c.prepared for c in candidates)
        admission: Admission[Judgement] = await self._store.admit_all(
            record(prepared),
            view_started_at=view.started_at - CLOCK_MARGIN,
            decide=lambda inputs: judge(candidates, limits, view, inputs, exclusive=True),
            approved=lambda verdict: verdict.approved,
            forget_on_refusal=forget_on_refusal,
            events=[("create_requested", {"legs": [_describe(p) for p in prepared]}), *first_events],
        )
        if admission.order is None:
            assert admission.verdict is not None
            violations = admission.verdict.violations
            raise domain.RiskRejected(
                "refused by the pre-trade risk gate: " + ", ".join(v.code for v in violations),
                invalid_params=[domain.InvalidParam(v.code, v.message) for v in violations],
            )
        return AdmittedList(
            prepared=None if admission.existing else prepared, orders=admission.orders, existing=admission.existing
        )

    async def _observe(
        self, account: str, venue: str, markets: Mapping[str, Market], limits: RiskLimits, symbols: list[str]
    ) -> AccountView:
        """Balances, prices, open orders and equity marks, read concurrently; a failed read fails closed."""
        started = datetime.now(UTC)
        failures: list[domain.DomainError] = []
        needs_holdings = (
            limits.max_gross_exposure is not None
            or limits.daily_loss_limit is not None
            or limits.max_drawdown is not None
        )
        # An account-wide open-orders list weighs 80 on Binance: read it only when a limit needs it.
        open_read = (
            asyncio.create_task(self._open_orders(account, failures)) if limits.max_open_orders is not None else None
        )
        marks = asyncio.create_task(self._equity_marks(account, limits)) if needs_holdings else None
        valuation: Valuation | None = None
        if needs_holdings:  # the holdings decide which prices are needed: balances, then their prices
            try:
                held = await self._gateway.valued_holdings(account, limits.quote_currency, also_price=symbols)
            except domain.DomainError as exc:
                failures.append(exc)
                balances, (tickers, _) = None, await self._tickers(venue, sorted(set(symbols)), failures)
            else:
                balances, tickers, valuation = held.balances, held.tickers, held.valuation
        else:  # one round trip: balances, prices (and open orders) at once
            prices = self._tickers(venue, sorted(set(symbols)), failures)
            (tickers, _), balances = await asyncio.gather(prices, self._balances(account, failures))
        open_orders = await open_read if open_read is not None else None
        baseline, peak = await marks if marks is not None else (None, None)
        return AccountView(
            started_at=started,
            markets=markets,
            tickers=tickers,
            balances=balances,
            open_orders=open_orders,
            valuation=valuation,
            day_baseline=baseline,
            peak_equity=peak,
            unavailable=next((f for f in failures if f.status >= 500), None),
        )

    async def _balances(self, account: str, failures: list[domain.DomainError]) -> Balances | None:
        try:
            return await self._gateway.balances(account)
        except domain.DomainError as exc:
            failures.append(exc)
            return None

    async def _open_orders(self, account: str, failures: list[domain.DomainError]) -> list[VenueOrder] | None:
        try:
            return await self._gateway.open_orders(account)
        except domain.DomainError as exc:
            failures.append(exc)
            return None

    async def _tickers(
        self, venue: str, symbols: list[str], failures: list[domain.DomainError]
    ) -> tuple[dict[str, Ticker], bool]:
        try:
            return await self._gateway.tickers(venue, symbols), False
        except domain.DomainError as exc:
            failures.append(exc)
            return {}, True  # every order then fails closed with PRICE_UNAVAILABLE

    async def _equity_marks(self, account: str, limits: RiskLimits) -> tuple[Decimal | None, Decimal | None]:
        day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        baseline = await self._risk.first_equity_since(account, day_start) if limits.daily_loss_limit else None
        peak = await self._risk.peak_equity(account, limits.quote_currency) if limits.max_drawdown else None
        return baseline, peak


def _candidate(market: Market, request: CreateOrderRequest, view: AccountView) -> Candidate:
    ticker = view.tickers.get(request.symbol)
    prepared, breaches = market_rules.prepare(market, request, ticker.last if ticker is not None else None)
    return Candidate(prepared=prepared, breaches=breaches)


def _describe(order: PreparedOrder) -> dict[str, object]:
    return {
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "amount": order.amount,
        "quote_amount": order.quote_amount,
        "price": order.price,
        "stop_price": order.stop_price,
    }
