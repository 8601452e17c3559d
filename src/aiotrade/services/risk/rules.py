"""The gate's rules, as a pure function of what was read: every rule an order breaks, with its code.

Fails closed: no price, a stale ticker, unknown balances or an unvaluable account refuse the trade.
Orders still in flight (recorded but not yet reflected in the balances read) count as if they had
executed: their funds are reserved, their resting orders counted, their size added to positions. Our buys
resting on the venue count in positions and exposure for what they may still buy (their funds are already
locked in the balances read); orders placed on the venue by anything but aiotrade are not known here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from aiotrade import errors as domain
from aiotrade.domain import market_rules
from aiotrade.domain.funding import funding_need
from aiotrade.domain.market_rules import MarketBreach, PreparedOrder
from aiotrade.domain.records import VenueOrder
from aiotrade.domain.valuation import Valuation
from aiotrade.models.account import Balances
from aiotrade.models.market import Market, Ticker
from aiotrade.models.orders import OrderStatus, OrderType
from aiotrade.models.risk import RiskLimits, TradingState, Violation
from aiotrade.store.gate import GateInputs
from aiotrade.store.orders import StoredOrder

ZERO = Decimal(0)
SEVERITY = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)
_RESTING = frozenset({OrderStatus.PENDING, OrderStatus.UNKNOWN, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the gate read of an account before judging (never while holding the account's lock)."""

    started_at: datetime
    markets: Mapping[str, Market]
    tickers: Mapping[str, Ticker]
    balances: Balances | None  # None: could not be read
    open_orders: Sequence[VenueOrder] | None  # None: not needed, or could not be read
    valuation: Valuation | None  # of the holdings, when a limit needs it
    day_baseline: Decimal | None = None  # first equity recorded today
    peak_equity: Decimal | None = None
    # The first read that failed because the venue was away (5xx: down, circuit open, timed out), if any.
    unavailable: domain.DomainError | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One order of a batch, at the market's precision, with the market's own breaches."""

    prepared: PreparedOrder
    breaches: Sequence[MarketBreach]


@dataclass(frozen=True, slots=True)
class Judgement:
    violations: list[Violation]
    state: TradingState  # the state the orders were judged under (loss limits included)
    state_reason: str | None = None

    @property
    def approved(self) -> bool:
        return not self.violations


@dataclass
class _Ledger:
    """Free balances and holdings as the orders judged so far (and those in flight) leave them."""

    free: dict[str, Decimal]
    holdings: dict[str, Decimal]
    known: bool
    resting: set[str] = field(default_factory=set)
    # What our resting buys may still buy, per base asset, valued at their own limit prices (the most they
    # pay: a buy stop-limit above the market counts at its limit) — for positions and exposure, not funds.
    to_buy: dict[str, Decimal] = field(default_factory=dict)


def judge(
    candidates: Sequence[Candidate],
    limits: RiskLimits,
    view: AccountView,
    inputs: GateInputs,
    *,
    now: float | None = None,
    exclusive: bool = False,
) -> Judgement:
    """Every rule each candidate breaks (tagged with its index in a batch of several).

    ``exclusive``: the candidates are an order list of which at most one executes (an OCO's legs): each
    counts against the limits, but each is funded from the same balances rather than after the others.
    """
    now = time.time() if now is None else now
    violations: list[Violation] = []
    state, loss = _effective_state(inputs.state.state, limits, view)
    if loss and loss[0].code == "EQUITY_UNAVAILABLE":
        violations += loss
        loss = []

    if limits.max_orders_per_minute is not None:
        submitted = inputs.submitted_last_minute
        if submitted + len(candidates) > limits.max_orders_per_minute:
            violations.append(
                Violation(
                    code="SUBMIT_RATE_EXCEEDED",
                    message=f"{submitted} orders in the last minute; the limit is {limits.max_orders_per_minute}",
                )
            )

    ledger = _ledger(view, inputs.in_flight, limits, inputs.resting_buys)
    if limits.max_open_orders is not None:
        new_resting = sum(1 for c in candidates if c.prepared.type != OrderType.MARKET.value)
        if view.open_orders is None:
            violations.append(Violation(code="OPEN_ORDERS_UNAVAILABLE", message="open orders could not be read"))
        else:
            open_now = len(_open_order_ids(view.open_orders, inputs.in_flight))
            if open_now + new_resting > limits.max_open_orders:
                violations.append(
                    Violation(
                        code="OPEN_ORDERS_EXCEED_MAX",
                        message=f"{open_now} open or in flight + {new_resting} new exceeds {limits.max_open_orders}",
                    )
                )

    refused_by_state = False
    for index, candidate in enumerate(candidates):
        tag = index if len(candidates) > 1 else None
        own = (
            replace(ledger, free=dict(ledger.free), holdings=dict(ledger.holdings), to_buy=dict(ledger.to_buy))
            if exclusive
            else ledger
        )
        found = _judge_one(candidate, limits, view, state, own, now)
        refused_by_state |= any(v.code in ("REDUCE_ONLY", "TRADING_HALTED") for v in found)
        violations += [v.model_copy(update={"order_index": tag}) for v in found]
    if loss and refused_by_state:
        violations = loss + violations
    reason = loss[0].message if loss else inputs.state.reason
    return Judgement(violations=violations, state=state, state_reason=reason)


def _judge_one(
    candidate: Candidate, limits: RiskLimits, view: AccountView, state: TradingState, ledger: _Ledger, now: float
) -> list[Violation]:
    order = candidate.prepared
    out = [Violation(code=b.code, message=f"{b.field}: {b.reason}") for b in candidate.breaches]
    market = view.markets[order.symbol]
    base, quote = market.base, market.quote
    ticker = view.tickers.get(order.symbol)
    last = ticker.last if ticker is not None else None
    if last is None:
        out.append(Violation(code="PRICE_UNAVAILABLE", message=f"no last price for {order.symbol}"))
    elif (age := _age_s(ticker, now)) > limits.max_ticker_age_s:
        out.append(Violation(code="PRICE_STALE", message=f"ticker for {order.symbol} is {age:.0f}s old"))

    notional = market_rules.notional(order, last)
    amount = market_rules.base_amount(order, last)
    held = ledger.holdings.get(base, ZERO)
    reduces = order.side == "sell" and amount is not None and amount <= held
    if state is TradingState.HALTED:
        out.append(Violation(code="TRADING_HALTED", message="the account is HALTED: only cancels are allowed"))
    elif state is TradingState.REDUCING and not reduces:
        out.append(Violation(code="REDUCE_ONLY", message="the account is REDUCING: only orders that reduce exposure"))

    # Fat finger: a limit price far from the last price — for a stop, far from its own trigger (a stop is
    # meant to sit away from the market, its limit price is not).
    reference, named = (
        (order.stop_price, "the stop price") if order.stop_price is not None else (last, "the last price")
    )
    if order.price is not None and reference is not None and limits.price_band is not None:
        deviation = abs(order.price - reference) / reference
        if deviation > limits.price_band:
            out.append(
                Violation(
                    code="PRICE_BAND_EXCEEDED",
                    message=f"price {order.price} is {deviation:.2%} from {named} {reference} "
                    f"(band {limits.price_band:.2%})",
                )
            )
    if order.stop_price is not None and last is not None and market_rules.would_trigger_now(order, last):
        out.append(
            Violation(
                code="STOP_WOULD_TRIGGER_IMMEDIATELY",
                message=f"stop price {order.stop_price} is already crossed by the last price {last}",
            )
        )
    if notional is not None and limits.max_order_notional is not None and notional > limits.max_order_notional:
        out.append(
            Violation(
                code="NOTIONAL_EXCEEDS_MAX_PER_ORDER",
                message=f"notional {notional} exceeds {limits.max_order_notional}",
            )
        )
    if order.side == "buy" and amount is not None and last is not None:
        mark = _exposure_price(order, last)
        position = (held + amount) * mark + ledger.to_buy.get(base, ZERO)
        if limits.max_position_notional is not None and position > limits.max_position_notional:
            out.append(
                Violation(
                    code="POSITION_EXCEEDS_MAX",
                    message=f"{base} position would be worth {position:.2f} {quote}; "
                    f"the limit is {limits.max_position_notional}",
                )
            )
        if limits.max_gross_exposure is not None:
            held_value = view.valuation.gross_exposure(ledger.holdings) if view.valuation is not None else None
            if held_value is None:
                out.append(Violation(code="EXPOSURE_UNAVAILABLE", message="a holding cannot be priced"))
            elif (gross := held_value + sum(ledger.to_buy.values(), ZERO) + amount * mark) > limits.max_gross_exposure:
                out.append(
                    Violation(
                        code="GROSS_EXPOSURE_EXCEEDS_MAX",
                        message=f"gross exposure would be {gross:.2f}; the limit is {limits.max_gross_exposure}",
                    )
                )

    if not ledger.known:
        out.append(Violation(code="BALANCE_UNAVAILABLE", message="the account's balances could not be read"))
    elif notional is not None and amount is not None:
        need = funding_need(market, order.side, amount, notional, limits.fee_rate)
        available = ledger.free.get(need.asset, ZERO)
        if need.required > available:
            out.append(
                Violation(
                    code="INSUFFICIENT_BALANCE",
                    message=f"needs {need.required} {need.asset} (fees included), "
                    f"{available} free after earlier orders",
                )
            )
        _consume(ledger, market, order.side, amount, need.asset, need.required)
    return out


@dataclass(frozen=True, slots=True)
class LossBreach:
    code: str
    message: str
    state: TradingState  # the state the account moves to


def loss_limit_breaches(
    limits: RiskLimits, equity: Decimal, day_baseline: Decimal | None, peak: Decimal | None
) -> list[LossBreach]:
    """The loss limits ``equity`` has reached: daily loss from the day's first record, drawdown from the peak."""
    out = []
    if limits.daily_loss_limit is not None and day_baseline is not None:
        loss = day_baseline - equity
        if loss >= limits.daily_loss_limit:
            reason = f"daily loss {loss} reached the limit {limits.daily_loss_limit}"
            out.append(LossBreach("DAILY_LOSS_LIMIT_REACHED", reason, limits.daily_loss_state))
    if limits.max_drawdown is not None and peak is not None and peak > 0:
        drawdown = (peak - equity) / peak
        if drawdown >= limits.max_drawdown:
            reason = f"drawdown {drawdown:.2%} from peak {peak} reached the limit {limits.max_drawdown:.2%}"
            out.append(LossBreach("DRAWDOWN_LIMIT_REACHED", reason, limits.drawdown_state))
    return out


def _effective_state(
    stored: TradingState, limits: RiskLimits, view: AccountView
) -> tuple[TradingState, list[Violation]]:
    """The stored state, escalated by a loss limit the account has reached (read only: the monitor job
    records the escalation)."""
    if limits.daily_loss_limit is None and limits.max_drawdown is None:
        return stored, []
    equity = view.valuation.total(view.balances.holdings()) if view.valuation and view.balances else None
    if equity is None:
        return stored, [Violation(code="EQUITY_UNAVAILABLE", message="equity cannot be valued: fail closed")]
    breaches = loss_limit_breaches(limits, equity, view.day_baseline, view.peak_equity)
    state = max([stored, *(b.state for b in breaches)], key=SEVERITY.index)
    return state, [Violation(code=b.code, message=b.message) for b in breaches]


def _ledger(
    view: AccountView, in_flight: Sequence[StoredOrder], limits: RiskLimits, resting_buys: Sequence[StoredOrder] = ()
) -> _Ledger:
    if view.balances is None:
        return _Ledger(free={}, holdings={}, known=False)
    ledger = _Ledger(
        free={asset: held.free for asset, held in view.balances.assets.items()},
        holdings=view.balances.holdings(),
        known=True,
    )
    consumed: set[str] = set()
    for order in in_flight:
        market = view.markets.get(order.symbol)
        if market is None or _reflected(order, view.balances):
            continue
        ticker = view.tickers.get(order.symbol)
        last = ticker.last if ticker is not None else order.reference_price
        reference = order.price if order.price is not None else last
        amount = order.amount if order.amount is not None else None
        if amount is None and order.quote_amount is not None and reference:
            amount = order.quote_amount / reference
        if amount is None:
            continue
        notional = order.quote_amount if order.quote_amount is not None else (amount * reference if reference else None)
        if order.side == "buy":
            if notional is None:
                ledger.known = False  # an unpriced buy in flight: what is left cannot be known
                continue
            need = funding_need(market, "buy", amount, notional, limits.fee_rate)
        else:
            need = funding_need(market, "sell", amount, ZERO, limits.fee_rate)
        _consume(ledger, market, order.side, amount, need.asset, need.required)
        consumed.add(order.client_order_id)
    for order in resting_buys:  # counted above as if executed already, or resting now: what is left to buy
        if order.client_order_id in consumed or order.amount is None:
            continue
        market = view.markets.get(order.symbol)
        base = market.base if market is not None else order.symbol.split("/")[0]
        # Its limit price; a market order not yet filled, the price it was judged at.
        price = next((p for p in (order.price, order.stop_price, order.reference_price) if p is not None), None)
        left = order.amount - order.filled
        if left > 0 and price is not None:
            ledger.to_buy[base] = ledger.to_buy.get(base, ZERO) + left * price
    return ledger


def _reflected(order: StoredOrder, balances: Balances) -> bool:
    """Whether the balances read already include an acknowledged order: the venue changed them at or after
    the order's own time (both on the venue's clock). Unknown either way: not included (fail closed)."""
    if order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN):
        return False
    return (
        balances.updated_at is not None
        and order.exchange_updated_at is not None
        and balances.updated_at >= order.exchange_updated_at
    )


def _consume(ledger: _Ledger, market: Market, side: str, amount: Decimal, asset: str, required: Decimal) -> None:
    ledger.free[asset] = ledger.free.get(asset, ZERO) - required
    sign = 1 if side == "buy" else -1
    ledger.holdings[market.base] = ledger.holdings.get(market.base, ZERO) + sign * amount


def _exposure_price(order: PreparedOrder, last: Decimal) -> Decimal:
    """The price a buy's position and exposure are valued at: the last price, or for a stop the higher of the
    last price and the price it executes at once triggered (its limit price; a stop without one, its trigger).

    A buy stop-loss triggers above the market and buys at up to its limit: valued at the last price, the
    position it opens would be understated. A take-profit buy triggers below the market: the last price bounds it.
    """
    if order.stop_price is None:
        return last
    executes_at = order.price if order.price is not None else order.stop_price
    return max(last, executes_at)


def _open_order_ids(venue_open: Sequence[VenueOrder], in_flight: Sequence[StoredOrder]) -> set[str]:
    """Open orders counted once each: those the venue listed and those of ours still in flight."""
    ids = {o.client_order_id or f"venue:{o.exchange_order_id}" for o in venue_open}
    ids |= {o.client_order_id for o in in_flight if o.type != OrderType.MARKET.value and o.status in _RESTING}
    return ids


def _age_s(ticker: Ticker | None, now: float) -> float:
    if ticker is None or ticker.timestamp is None:
        return float("inf")
    return now - ticker.timestamp.timestamp()
