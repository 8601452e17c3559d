"""Our API keys and WebSocket tickets never appear in logs, errors, metrics or responses — whether a key rides
on a request that fails, in a malformed or unknown Authorization header, in a URL, or as a request id."""

from __future__ import annotations

import base64
import secrets

import httpx

from tests.observability.logcapture import captured_logs
from tests.support.stack import TEST_API_KEY, Stack

ORDERS = "/api/v1/accounts/paper/orders"


async def test_an_api_key_never_appears_in_logs_errors_metrics_or_responses(stack: Stack) -> None:
    trader = await stack.make_key("trader", "read,trade", rate_limit=3)
    unknown = "at_" + secrets.token_urlsafe(32)
    answers: list[httpx.Response] = []
    with captured_logs("INFO", "json") as captured:
        async with stack.client(trader.key) as as_trader:
            answers += [
                await as_trader.post(ORDERS, json={"symbol": "BTC/USDT", "side": "sideways", "amount": "x"}),  # 422
                await as_trader.get("/api/v1/no-such-route"),  # 404
                await as_trader.get("/api/v1/admin/keys"),  # 403 (no admin scope)
            ]
            while (over := await as_trader.get("/api/v1/exchanges")).status_code != 429:  # over its rate
                pass
            answers.append(over)
        for authorization in (
            f"Bearer {unknown}",  # one of ours in shape, unknown to the store
            f"Bearer {trader.key}x",  # one character off
            f"Bearer {trader.key[:20]}",  # cut short
            f"Token {trader.key}",  # another scheme
            f"Basic {base64.b64encode(f'user:{trader.key}'.encode()).decode()}",
            f"{trader.key}",  # no scheme at all
        ):
            async with stack.client(None) as anonymous:
                answers.append(await anonymous.get("/api/v1/exchanges", headers={"Authorization": authorization}))
        async with stack.client(None) as anonymous:
            answers += [
                await anonymous.get("/api/v1/exchanges", params={"api_key": trader.key}),  # a key in a URL
                await anonymous.get("/api/v1/exchanges", headers={"X-Request-ID": trader.key}),
            ]
        answers += [
            await stack.api.get("/api/v1/exchanges", headers={"X-Request-ID": TEST_API_KEY}),
            await stack.api.post("/api/v1/auth/ws-ticket"),
            await stack.api.get("/api/v1/admin/keys"),
            await stack.api.get("/metrics"),
        ]
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [422, 404, 403, 429], statuses
    assert set(statuses[4:12]) == {401} and statuses[12:] == [200] * 4, statuses
    ticket = answers[13].json()["ticket"]
    secrets_sent = (trader.key, unknown, TEST_API_KEY, trader.key[:20])
    for answer in answers:
        seen = answer.text + " " + str(list(answer.headers.items()))
        for secret in secrets_sent:
            assert secret not in seen, (answer.request.url, answer.status_code)
        assert ticket not in seen or answer is answers[13]
    for secret in (*secrets_sent, ticket):
        assert secret not in captured.text
    assert captured.text.count("/api/v1/exchanges") >= 10  # the access lines were there to look at
    assert trader.key_id in str(answers[14].json())  # keys are named by their ids
