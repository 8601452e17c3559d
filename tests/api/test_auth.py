"""Who may call what: every route declares its requirement, and every protected route refuses, as problem+json,
a request with no key, a bad key, a key without the scope and a key without the account — before its body is
validated and before anything reaches the exchange."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from aiotrade.api.auth import OPEN_PATHS, is_open_path
from aiotrade.api.security import Requirement, require, routes_with_requirements
from aiotrade.app import create_app
from aiotrade.config import PAPER_API_KEY, PAPER_SECRET, AccountConfig, Settings, VenueConfig
from aiotrade.models.keys import Scope
from tests.api.test_problems import assert_problem
from tests.support.stack import Stack, running_stack

TWO_ACCOUNTS = {
    "paper": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
    "spare": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
}
SAMPLE_PATH_PARAMS = {"exchange": "paper", "account": "paper", "order_id": "at0000", "name": "nobody"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, accounts=TWO_ACCOUNTS) as running:
        yield running


def protected_routes(app: FastAPI) -> list[tuple[APIRoute, Requirement]]:
    found = []
    for route, requirement in routes_with_requirements(app.routes):
        if isinstance(route, APIRoute) and requirement is not None and requirement.scope is not None:
            found.append((route, requirement))
    return found


def missing_requirements(app: FastAPI) -> list[str]:
    """Routes that declare nothing: API routes without a requirement, other routes outside the open paths."""
    missing = []
    for route, requirement in routes_with_requirements(app.routes):
        path = getattr(route, "path", "?")
        if isinstance(route, APIRoute | APIWebSocketRoute):
            if requirement is None:
                missing.append(path)
            elif requirement.scope is None and not is_open_path(path):
                missing.append(f"{path} (declared open, but the middleware asks it for a key)")
        elif not is_open_path(path):
            missing.append(path)
    return missing


def sample_request(route: APIRoute, requirement: Requirement, account: str = "paper") -> tuple[str, str, dict]:
    method = sorted(route.methods - {"HEAD"})[0]
    params = {**SAMPLE_PATH_PARAMS, "account": account}
    path = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], route.path_format)
    options: dict = {}
    if requirement.account == "query":
        options["params"] = {"account": account}
    if method in ("POST", "PUT", "PATCH"):
        options["json"] = {"account": account} if requirement.account == "body" else {}
    return method, path, options


def test_every_route_declares_what_it_needs() -> None:
    app = create_app(Settings(venues={"paper": VenueConfig(base_url="http://127.0.0.1:9")}))
    assert not missing_requirements(app)
    assert len(protected_routes(app)) >= 30
    opened = {route.path for route, r in routes_with_requirements(app.routes) if r is not None and r.scope is None}
    # Liveness, readiness, the docs and the dashboard page: never anything under /api.
    assert {"/healthz", "/readyz"} <= opened and all(is_open_path(p) and not p.startswith("/api") for p in opened)


def test_the_route_walk_catches_a_route_without_a_requirement() -> None:
    app = create_app(Settings(venues={"paper": VenueConfig(base_url="http://127.0.0.1:9")}))

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    @app.get("/api/v1/guarded", dependencies=[require(Scope.READ)])
    async def guarded() -> dict[str, str]:
        return {}

    assert missing_requirements(app) == ["/api/v1/forgotten"]


async def test_each_route_refuses_no_key_bad_key_wrong_scope_and_another_account(stack: Stack) -> None:
    routes = protected_routes(stack.app)
    bad = "at_" + secrets.token_urlsafe(32)
    keys = {
        scope: (await stack.make_key(f"without-{scope.value}", ",".join(s.value for s in Scope if s is not scope))).key
        for scope in Scope
    }
    spare_only = (await stack.make_key("spare-only", accounts="spare")).key
    async with (
        stack.client(None) as anonymous,
        stack.client(bad) as impostor,
        stack.client(spare_only) as elsewhere,
    ):
        for route, requirement in routes:
            method, path, options = sample_request(route, requirement)
            label = f"{method} {path}"
            for client, status in ((anonymous, 401), (impostor, 401)):
                refused = await client.request(method, path, **options)
                assert_problem(refused, status)
                assert refused.headers["WWW-Authenticate"].startswith("Bearer"), label
            assert requirement.scope is not None
            async with stack.client(keys[requirement.scope]) as unscoped:
                body = assert_problem(await unscoped.request(method, path, **options), 403)
                assert requirement.scope.value in body["detail"], label
            if requirement.account != "none":
                body = assert_problem(await elsewhere.request(method, path, **options), 403)
                assert body["detail"] == "this API key may not act on this account", label
    assert stack.paper_requests("/api/v3/order") == 0  # nothing refused reached the exchange


async def test_another_account_is_refused_the_same_whether_it_exists_or_not(stack: Stack) -> None:
    spare_only = (await stack.make_key("spare-only", accounts="spare")).key
    async with stack.client(spare_only) as client:
        existing = await client.get("/api/v1/accounts/paper/orders")
        missing = await client.get("/api/v1/accounts/no-such-account/orders")
        allowed = await client.get("/api/v1/accounts/spare/orders")
    first, second = assert_problem(existing, 403), assert_problem(missing, 403)
    assert {k: v for k, v in first.items() if k not in ("instance", "request_id")} == {
        k: v for k, v in second.items() if k not in ("instance", "request_id")
    }
    assert "paper" not in first["detail"] and "spare" not in first["detail"]
    assert allowed.status_code == 200, allowed.text


async def test_an_unknown_account_on_an_all_accounts_key_is_a_404_that_lists_no_account(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/accounts/no-such-account/orders")
    body = assert_problem(response, 404)
    assert "no-such-account" in body["detail"]
    assert "paper" not in body["detail"] and "spare" not in body["detail"]
    for path, params in (
        ("/api/v1/portfolio/status", {"account": "ghost"}),
        ("/api/v1/portfolio/live/snapshot", {"account": "ghost"}),
    ):
        problem = assert_problem(await stack.api.get(path, params=params), 404)
        assert "paper" not in problem["detail"] and "spare" not in problem["detail"]


async def test_refusals_come_before_the_body_is_validated(stack: Stack) -> None:
    reader = (await stack.make_key("reader", "read")).key
    async with stack.client(reader) as client, stack.client(None) as anonymous:
        invalid = {"symbol": 5, "side": "sideways", "amount": "lots"}
        assert_problem(await client.post("/api/v1/accounts/paper/orders", json=invalid), 403)
        assert_problem(await anonymous.post("/api/v1/accounts/paper/orders", json=invalid), 401)
        assert_problem(await client.put("/api/v1/accounts/paper/risk-limits", json={"nonsense": True}), 403)
        # The control: with the scope, the same body is refused by validation.
        assert_problem(await stack.api.post("/api/v1/accounts/paper/orders", json=invalid), 422)


async def test_a_body_carried_account_is_checked(stack: Stack) -> None:
    spare_only = (await stack.make_key("spare-only", accounts="spare")).key
    body = {"orders": [{"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}]}
    async with stack.client(spare_only) as client:
        assert_problem(await client.post("/api/v1/risk/validate-trade", json=body), 403)  # the default account
        assert_problem(await client.post("/api/v1/risk/validate-trade", json={**body, "account": "paper"}), 403)
        allowed = await client.post("/api/v1/risk/validate-trade", json={**body, "account": "spare"})
    assert allowed.status_code == 200, allowed.text


async def test_a_dry_run_rebalance_needs_read_and_executing_it_needs_trade(stack: Stack) -> None:
    reader = (await stack.make_key("reader", "read")).key
    async with stack.client(reader) as client:
        plan = await client.post("/api/v1/portfolio/rebalance", json={})
        assert plan.status_code != 403, plan.text  # a dry run (422 here: no targets yet)
        for execute in (True, 1, "true", "yes"):  # whatever validation would read as true
            assert_problem(await client.post("/api/v1/portfolio/rebalance", json={"execute": execute}), 403)
        assert (await client.post("/api/v1/portfolio/rebalance", json={"execute": False})).status_code != 403
        allocation = {"symbols": ["BTC/USDT", "ETH/USDT"], "lookback": 60}
        assert (await client.post("/api/v1/portfolio/allocations", json=allocation)).status_code == 200
        saving = {**allocation, "save_as_targets": True, "account": "paper"}
        assert_problem(await client.post("/api/v1/portfolio/allocations", json=saving), 403)
    assert (await stack.api.post("/api/v1/portfolio/allocations", json=saving)).status_code == 200


async def test_open_paths_answer_without_a_key(stack: Stack) -> None:
    async with stack.client(None) as anonymous:
        async with asyncio.timeout(15):
            while (await anonymous.get("/readyz")).status_code != 200:  # the venue's markets load at start-up  # noqa: ASYNC110 (polling another party)
                await asyncio.sleep(0.1)
        for path in sorted(OPEN_PATHS):
            response = await anonymous.get(path)
            assert response.status_code == 200, (path, response.status_code)
        assert_problem(await anonymous.get("/metrics"), 401)
        assert_problem(await anonymous.get("/debug/loop-lag"), 401)
        assert_problem(await anonymous.get("/api/v1/no-such-route"), 401)  # nothing is learnt without a key


async def test_the_openapi_document_names_the_bearer_scheme_and_each_scope(stack: Stack) -> None:
    schema = (await stack.api.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["apiKey"]["description"],
    }
    create = schema["paths"]["/api/v1/accounts/{account}/orders"]["post"]
    assert create["security"] == [{"apiKey": []}] and "`trade`" in create["description"]
    assert {"401", "403", "429"} <= set(create["responses"])
    assert "security" not in schema["paths"]["/healthz"]["get"]


async def test_the_audit_rows_of_an_order_carry_the_key_that_created_and_cancelled_it(stack: Stack) -> None:
    trader = await stack.make_key("trader", "read,trade")
    canceller = await stack.make_key("canceller", "trade")
    ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
    price = str(round(float(ticker["last"]) * 0.97, 2))
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": price}
    async with stack.client(trader.key) as client:
        created = await client.post("/api/v1/accounts/paper/orders", json=body, headers={"Idempotency-Key": "a-1"})
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    created_rows = await stack.app.state.store.audit_trail("paper", order_id)
    assert created_rows and {row.api_key_id for row in created_rows} == {trader.key_id}
    assert all(row.request_id == created.headers["X-Request-ID"] for row in created_rows)
    async with stack.client(canceller.key) as client:
        cancelled = await client.delete(f"/api/v1/accounts/paper/orders/{order_id}")
    assert cancelled.status_code == 200, cancelled.text
    later_rows = (await stack.app.state.store.audit_trail("paper", order_id))[len(created_rows) :]
    assert later_rows and {row.api_key_id for row in later_rows} == {canceller.key_id}
    assert trader.key not in str([row.detail for row in created_rows + later_rows])


async def test_admin_endpoints_make_list_and_revoke_keys(stack: Stack) -> None:
    made = await stack.api.post(
        "/api/v1/admin/keys", json={"name": "ops", "scopes": ["read"], "accounts": ["spare"], "rate_limit": 5}
    )
    assert made.status_code == 201, made.text
    created = made.json()
    assert re.fullmatch(r"at_[A-Za-z0-9_-]{43}", created["key"]) and made.headers["Cache-Control"] == "no-store"
    assert created["scopes"] == ["read"] and created["accounts"] == ["spare"] and created["rate_limit"] == 5
    assert_problem(await stack.api.post("/api/v1/admin/keys", json={"name": "ops", "scopes": ["read"],
                                                                     "accounts": ["spare"]}), 409)  # fmt: skip
    assert_problem(
        await stack.api.post("/api/v1/admin/keys", json={"name": "x", "scopes": ["read"], "accounts": ["ghost"]}),
        422,
    )
    listed = (await stack.api.get("/api/v1/admin/keys")).json()
    assert "ops" in {k["name"] for k in listed} and all("key" not in k for k in listed)
    async with stack.client(created["key"]) as ops:
        assert (await ops.get("/api/v1/accounts/spare/orders")).status_code == 200
        revoked = await stack.api.delete("/api/v1/admin/keys/ops")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        stack.app.state.authenticator._cache.clear()  # this replica's cache; other replicas: test_auth_keys
        assert_problem(await ops.get("/api/v1/accounts/spare/orders"), 401)
    assert_problem(await stack.api.delete("/api/v1/admin/keys/ops"), 404)


async def test_the_default_rate_limit_applies_to_keys_made_without_one(stack: Stack) -> None:
    made = await stack.api.post("/api/v1/admin/keys", json={"name": "plain", "scopes": ["read"], "accounts": ["*"]})
    assert made.json()["rate_limit"] == 20


def test_a_key_is_256_random_bits_in_the_agreed_shape() -> None:
    from aiotrade.api.auth import new_key

    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"at_[A-Za-z0-9_-]{40,}", k) and len(k) == 3 + 43 for k in keys)


async def test_a_plain_http_client_gets_a_401_problem(stack: Stack) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url="http://localhost") as raw:
        response = await raw.get("/api/v1/exchanges", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(response, 401)
