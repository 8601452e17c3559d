"""The load profile: what a day of internal callers looks like, in proportion.

- ``MarketData`` (most users): tickers, books, trades, candles, markets, venue status.
- ``Trader``: a resting limit order made with an Idempotency-Key, sometimes sent again with the same key
  (the answer must be the same order, marked replayed), then cancelled; history and the live snapshot.
- ``Quant``: position sizing, the pre-trade check, portfolio risk, probabilities, allocations (the heavy maths).
- ``StreamSubscriber`` (a fixed few): the live WebSocket, held open and re-opened, every frame counted.

Configured by the environment (set by ``python -m loadtest``): ``LOADTEST_HOSTS`` (comma-separated base
URLs, users spread over them), ``LOADTEST_API_KEY``, ``LOADTEST_ACCOUNT``, ``LOADTEST_EXCHANGE``,
``LOADTEST_STREAMS`` (subscribers), ``LOADTEST_PACE`` (multiplies every wait; < 1 is busier),
``LOADTEST_SMOKE=1`` (each user runs every task of its class once first: a short run covers the profile).
A replay that returns another order is reported as a failure named ``duplicate order``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import Counter
from decimal import ROUND_DOWN, Decimal

import websocket  # websocket-client: synchronous, cooperative under locust's gevent
from locust import HttpUser, User, between, events, task

HOSTS = [h.strip().rstrip("/") for h in os.environ.get("LOADTEST_HOSTS", "http://127.0.0.1:8000").split(",") if h]
API_KEY = os.environ.get("LOADTEST_API_KEY", "")
ACCOUNT = os.environ.get("LOADTEST_ACCOUNT", "paper")
EXCHANGE = os.environ.get("LOADTEST_EXCHANGE", "paper")
STREAMS = int(os.environ.get("LOADTEST_STREAMS", "3"))
PACE = float(os.environ.get("LOADTEST_PACE", "1"))
SMOKE = os.environ.get("LOADTEST_SMOKE") == "1"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "ETH/BTC", "LTC/USDT"]
PORTFOLIO = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
MARKET = f"/api/v1/exchanges/{EXCHANGE}"
ORDERS = f"/api/v1/accounts/{ACCOUNT}/orders"
_next_host = itertools.cycle(HOSTS)


def paced(low: float, high: float):  # type: ignore[no-untyped-def] (locust's wait-time callable)
    return between(low * PACE, high * PACE)


class _OnAReplica(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.client.base_url = next(_next_host)  # users spread over the replicas, round robin
        self.client.headers.update(HEADERS)
        if SMOKE:  # every task once first, so that a short run exercises the whole profile
            for each in dict.fromkeys(self.tasks):  # a task of weight n is listed n times
                each(self)


class MarketData(_OnAReplica):
    weight = 6
    wait_time = paced(0.2, 1.0)

    @task(10)
    def ticker(self) -> None:
        self.client.get(f"{MARKET}/ticker", params={"symbol": random.choice(SYMBOLS)}, name="GET ticker")

    @task(2)
    def tickers(self) -> None:
        self.client.get(f"{MARKET}/tickers", params={"symbols": ",".join(SYMBOLS[:4])}, name="GET tickers")

    @task(4)
    def order_book(self) -> None:
        params = {"symbol": random.choice(SYMBOLS), "limit": 20}
        self.client.get(f"{MARKET}/orderbook", params=params, name="GET orderbook")

    @task(2)
    def trades(self) -> None:
        self.client.get(f"{MARKET}/trades", params={"symbol": random.choice(SYMBOLS), "limit": 50}, name="GET trades")

    @task(3)
    def candles(self) -> None:
        params = {"symbol": random.choice(SYMBOLS), "timeframe": "1h", "limit": 100}
        self.client.get(f"{MARKET}/ohlcv", params=params, name="GET ohlcv")

    @task(1)
    def markets(self) -> None:
        self.client.get(f"{MARKET}/markets", name="GET markets")

    @task(1)
    def status(self) -> None:
        self.client.get(f"{MARKET}/status", name="GET status")


class Trader(_OnAReplica):
    weight = 2
    wait_time = paced(0.5, 2.0)

    @task(5)
    def place_and_cancel(self) -> None:
        ticker = self.client.get(f"{MARKET}/ticker", params={"symbol": "BTC/USDT"}, name="GET ticker")
        if ticker.status_code != 200:
            return
        # 3 % under the market: inside the gate's price band, far enough not to fill.
        price = (Decimal(ticker.json()["last"]) * Decimal("0.97")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(price)}
        key = f"load-{uuid.uuid4().hex}"
        created = self.client.post(ORDERS, json=body, headers={"Idempotency-Key": key}, name="POST order")
        if created.status_code != 201:
            return
        order_id = created.json()["id"]
        if random.random() < 0.2:  # a caller that did not see the answer sends the same request again
            with self.client.post(
                ORDERS, json=body, headers={"Idempotency-Key": key}, name="POST order (replay)", catch_response=True
            ) as replay:
                if replay.status_code not in (200, 201):
                    replay.failure(f"replay answered {replay.status_code}")
                elif replay.json()["id"] != order_id or replay.headers.get("Idempotent-Replayed") != "true":
                    replay.failure("duplicate order")
                    events.request.fire(
                        request_type="CHECK", name="duplicate order", response_time=0, response_length=0,
                        exception=AssertionError(f"{key}: {order_id} then {replay.json()['id']}"),
                    )  # fmt: skip
        with self.client.delete(f"{ORDERS}/{order_id}", name="DELETE order", catch_response=True) as cancel:
            if cancel.status_code == 409:  # filled in between: closed already, which is an answer
                cancel.success()

    @task(2)
    def history(self) -> None:
        self.client.get(ORDERS, params={"limit": 20}, name="GET orders")

    @task(2)
    def snapshot(self) -> None:
        self.client.get("/api/v1/portfolio/live/snapshot", params={"account": ACCOUNT}, name="GET live snapshot")

    @task(1)
    def validate(self) -> None:
        order = {"symbol": "ETH/USDT", "side": "buy", "type": "market", "amount": "0.1"}
        body = {"account": ACCOUNT, "orders": [order]}
        self.client.post("/api/v1/risk/validate-trade", json=body, name="POST validate-trade")


class Quant(_OnAReplica):
    weight = 1
    wait_time = paced(1.0, 3.0)

    @task(3)
    def position_size(self) -> None:
        body = {"account": ACCOUNT, "symbol": "BTC/USDT", "risk_fraction": "0.01", "method": "atr"}
        self.client.post("/api/v1/risk/position-size", json=body, name="POST position-size")

    @task(2)
    def portfolio_risk(self) -> None:
        body = {"symbols": PORTFOLIO, "weights": ["0.5", "0.3", "0.2"], "lookback": 180}
        self.client.post("/api/v1/risk/portfolio", json=body, name="POST risk portfolio")

    @task(1)
    def probability(self) -> None:
        body = {"symbol": "ETH/USDT", "take_profit": "5800", "stop_loss": "4800", "horizon_bars": 30, "paths": 5000}
        self.client.post("/api/v1/risk/probability", json=body, name="POST probability")

    @task(1)
    def allocations(self) -> None:
        body = {"symbols": PORTFOLIO, "method": "min_variance", "lookback": 120}
        self.client.post("/api/v1/portfolio/allocations", json=body, name="POST allocations")


class StreamSubscriber(User):
    """Holds the live stream open ~20 s at a time. The time to the first snapshot is its figure; frames are
    counted by type (written to ``LOADTEST_STREAM_FILE`` at the end); an error frame or a close the server
    chose (other than 1001, shutting down) is a failure."""

    fixed_count = STREAMS
    wait_time = paced(0.5, 1.5)

    def on_start(self) -> None:
        self.url = next(_next_host).replace("http", "ws", 1) + f"/api/v1/portfolio/live/stream?account={ACCOUNT}"

    @task
    def subscribe(self) -> None:
        started = time.perf_counter()
        try:
            socket = websocket.create_connection(self.url, header=[f"Authorization: Bearer {API_KEY}"], timeout=5)
        except Exception as exc:  # any refusal or transport error is the stream's failure
            _report("WS connect", started, exc)
            return
        try:
            self._hold(socket, started, until=time.monotonic() + 20)
        except Exception as exc:  # the stream broke while we held it
            _report("WS stream", started, exc)
        finally:
            socket.close()

    def _hold(self, socket: websocket.WebSocket, started: float, *, until: float) -> None:
        first = True
        while time.monotonic() < until:
            try:
                opcode, data = socket.recv_data()
            except websocket.WebSocketTimeoutException:
                continue  # a quiet account: no change, no frame
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                STREAM_FRAMES[f"close {code}"] += 1
                if code != 1001:
                    _report("WS closed by the server", started, RuntimeError(f"close {code}: {data[2:].decode()}"))
                return
            frame = json.loads(data)
            STREAM_FRAMES[frame.get("type", "?")] += 1
            if frame.get("type") == "error":
                _report("WS error frame", started, RuntimeError(str(frame.get("detail"))))
            elif first:
                _report("WS first snapshot", started, None)
                first = False


STREAM_FRAMES: Counter[str] = Counter()


@events.test_stop.add_listener
def _write_stream_frames(**_: object) -> None:
    path = os.environ.get("LOADTEST_STREAM_FILE")
    if path:
        with open(path, "w") as file:
            json.dump(dict(STREAM_FRAMES), file)


def _report(name: str, started: float, exception: Exception | None) -> None:
    events.request.fire(
        request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000, response_length=0,
        exception=exception,
    )  # fmt: skip
