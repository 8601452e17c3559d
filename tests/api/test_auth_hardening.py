"""API-key hardening: an admin key grants and revokes only within its own power; unknown keys are remembered as
unknown (one query, not one per request) without delaying a key made here; the dev key file is never readable by
others, not even for a moment."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiotrade.api import auth
from aiotrade.api.auth import DEV_KEY_FILE, Authenticator, digest_of, ensure_dev_key, new_key
from aiotrade.config import PAPER_API_KEY, PAPER_SECRET, AccountConfig, Settings
from aiotrade.models.keys import NewApiKey
from aiotrade.store.api_keys import ApiKeyStore, StoredKey
from tests.api.test_auth_keys import store_on
from tests.api.test_problems import assert_problem
from tests.support.stack import Stack, running_stack

TWO_ACCOUNTS = {
    "paper": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
    "spare": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
}
KEYS = "/api/v1/admin/keys"
TICKER = "/api/v1/exchanges/paper/ticker"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, accounts=TWO_ACCOUNTS) as running:
        yield running


def new_key_body(name: str, scopes: list[str], accounts: list[str]) -> dict[str, object]:
    return {"name": name, "scopes": scopes, "accounts": accounts}


# ----- granting and revoking within the caller's power -----------------------------------------------------


async def test_an_admin_limited_to_one_account_cannot_grant_other_accounts_all_accounts_or_scopes_it_lacks(
    stack: Stack,
) -> None:
    limited = await stack.make_key("ops-paper", "read,admin", "paper")
    async with stack.client(limited.key) as ops:
        everything = await ops.post(KEYS, json=new_key_body("wide", ["read"], ["*"]))
        assert_problem(everything, 403, "accounts")
        other = assert_problem(await ops.post(KEYS, json=new_key_body("wide", ["read"], ["spare"])), 403, "accounts")
        ghost = assert_problem(await ops.post(KEYS, json=new_key_body("wide", ["read"], ["ghost"])), 403, "accounts")
        assert other["detail"] == ghost["detail"] and "spare" not in other["detail"]  # existence not revealed
        mixed = await ops.post(KEYS, json=new_key_body("wide", ["read"], ["paper", "spare"]))
        assert_problem(mixed, 403, "accounts")
        trade = assert_problem(await ops.post(KEYS, json=new_key_body("wide", ["read", "trade"], ["paper"])), 403)
        assert trade["errors"] == [{"name": "scopes", "detail": trade["errors"][0]["detail"]}]
        assert "trade" in trade["detail"]

        within = await ops.post(KEYS, json=new_key_body("narrow", ["read"], ["paper"]))
        assert within.status_code == 201, within.text
        assert within.json()["accounts"] == ["paper"] and within.json()["scopes"] == ["read"]
    names = {k["name"] for k in (await stack.api.get(KEYS)).json()}
    assert "narrow" in names and "wide" not in names


async def test_an_admin_with_every_account_grants_every_account_and_still_learns_of_unknown_ones(
    stack: Stack,
) -> None:
    full = await stack.make_key("ops-all", "read,admin", "*")
    async with stack.client(full.key) as ops:
        assert (await ops.post(KEYS, json=new_key_body("all", ["read"], ["*"]))).status_code == 201
        assert (await ops.post(KEYS, json=new_key_body("both", ["read"], ["paper", "spare"]))).status_code == 201
        assert_problem(await ops.post(KEYS, json=new_key_body("g", ["read"], ["ghost"])), 422, "accounts")
        assert_problem(await ops.post(KEYS, json=new_key_body("t", ["trade"], ["paper"])), 403, "scopes")


async def test_an_admin_limited_to_one_account_cannot_revoke_a_wider_key_but_can_revoke_one_within(
    stack: Stack,
) -> None:
    limited = await stack.make_key("ops-paper", "read,admin", "paper")
    await stack.make_key("everywhere", "read", "*")
    await stack.make_key("on-spare", "read", "spare")
    await stack.make_key("on-both", "read", "paper,spare")
    await stack.make_key("trader", "read,trade", "paper")
    await stack.make_key("reader", "read", "paper")
    async with stack.client(limited.key) as ops:
        for name, field in [("everywhere", "accounts"), ("on-spare", "accounts"), ("on-both", "accounts"),
                            ("trader", "scopes")]:  # fmt: skip
            assert_problem(await ops.delete(f"{KEYS}/{name}"), 403, field)
        assert_problem(await ops.delete(f"{KEYS}/nobody"), 404)
        revoked = await ops.delete(f"{KEYS}/reader")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
    active = {k["name"] for k in (await stack.api.get(KEYS)).json() if k["active"]}
    assert {"everywhere", "on-spare", "on-both", "trader"} <= active and "reader" not in active
    # The operator (the CLI's path: no caller) keeps every power.
    assert (await auth.revoke_key(stack.app.state.api_keys, "everywhere")).active is False


async def test_a_rate_limited_admin_grants_no_more_than_its_own_rate(stack: Stack) -> None:
    limited = await stack.make_key("ops-slow", "read,admin", "*", rate_limit=5)
    async with stack.client(limited.key) as ops:
        unlimited = {**new_key_body("fast", ["read"], ["paper"]), "rate_limit": 0}
        assert_problem(await ops.post(KEYS, json=unlimited), 403, "rate_limit")
        assert_problem(await ops.post(KEYS, json={**unlimited, "rate_limit": 6}), 403, "rate_limit")
        assert_problem(await ops.post(KEYS, json=new_key_body("fast", ["read"], ["paper"])), 403)  # default 20
        within = await ops.post(KEYS, json={**unlimited, "rate_limit": 5})
        assert within.status_code == 201, within.text


async def test_a_limited_admin_lists_only_keys_within_its_own_power(stack: Stack) -> None:
    limited = await stack.make_key("ops-paper", "read,admin", "paper")
    for name, scopes, accounts in [("everywhere", "read", "*"), ("on-spare", "read", "spare"),
                                   ("trader", "read,trade", "paper"), ("reader", "read", "paper")]:  # fmt: skip
        await stack.make_key(name, scopes, accounts)
    async with stack.client(limited.key) as ops:
        seen = (await ops.get(KEYS)).json()
    assert {k["name"] for k in seen} == {"ops-paper", "reader"}
    assert all(k["accounts"] == ["paper"] for k in seen)  # nothing of "spare" or of "*"
    assert {"everywhere", "on-spare", "trader"} <= {k["name"] for k in (await stack.api.get(KEYS)).json()}


async def test_a_revoke_judged_on_one_key_never_revokes_a_same_named_key_made_meanwhile(stack: Stack) -> None:
    limited = await stack.make_key("ops-paper", "read,admin", "paper")
    narrow = await stack.make_key("bot", "read", "paper")
    keys = stack.app.state.api_keys
    real_list = keys.list

    async def list_then_rotate() -> list[StoredKey]:
        # What the power check reads is the narrow key; the operator rotates "bot" into a wide key just after.
        listed = await real_list()
        await auth.revoke_key(keys, "bot")
        await stack.make_key("bot", "read", "*")
        return listed

    keys.list = list_then_rotate  # type: ignore[method-assign]
    try:
        async with stack.client(limited.key) as ops:
            answer = await ops.delete(f"{KEYS}/bot")
    finally:
        del keys.list
    assert_problem(answer, 404)  # the key it judged is gone; the wide one is not revoked in its place
    active = [k for k in await keys.list() if k.name == "bot" and k.active]
    assert [k.accounts for k in active] == [("*",)] and active[0].key_id != narrow.key_id


# ----- the negative cache ------------------------------------------------------------------------------------


def count_calls(monkeypatch: pytest.MonkeyPatch, store: ApiKeyStore, name: str = "by_digest") -> Callable[[], int]:
    real: Callable[[str], Awaitable[StoredKey | None]] = getattr(store, name)
    calls = 0

    async def counting(value: str) -> StoredKey | None:
        nonlocal calls
        calls += 1
        return await real(value)

    monkeypatch.setattr(store, name, counting)
    return lambda: calls


async def test_repeated_requests_with_one_unknown_key_make_one_store_lookup(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = count_calls(monkeypatch, stack.app.state.api_keys)
    unknown = new_key()
    async with stack.client(unknown) as stranger:
        for _ in range(30):
            assert_problem(await stranger.get(TICKER, params={"symbol": "BTC/USDT"}), 401)
        answers = await asyncio.gather(*(stranger.get(TICKER, params={"symbol": "BTC/USDT"}) for _ in range(30)))
    assert {a.status_code for a in answers} == {401}
    assert lookups() == 1


async def test_a_key_made_through_the_api_works_at_once_even_if_it_was_tried_before_it_existed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    upcoming = new_key()
    async with stack.client(upcoming) as early:
        assert_problem(await early.get(TICKER, params={"symbol": "BTC/USDT"}), 401)  # now remembered as unknown
        monkeypatch.setattr(auth, "new_key", lambda: upcoming)
        made = await stack.api.post(KEYS, json=new_key_body("fresh", ["read"], ["*"]))
        assert made.status_code == 201 and made.json()["key"] == upcoming
        answer = await early.get(TICKER, params={"symbol": "BTC/USDT"})
        assert answer.status_code == 200, answer.text


async def test_a_lookup_in_flight_when_its_key_is_made_does_not_leave_the_key_remembered_as_unknown(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: ApiKeyStore = stack.app.state.api_keys
    authenticator: Authenticator = stack.app.state.authenticator
    real = store.by_digest
    answered, release = asyncio.Event(), asyncio.Event()

    async def slow_first(digest: str) -> StoredKey | None:
        found = await real(digest)  # the first is asked before the key exists: nothing
        if not answered.is_set():
            answered.set()
            await release.wait()
        return found

    monkeypatch.setattr(store, "by_digest", slow_first)
    upcoming = new_key()
    early = asyncio.create_task(authenticator.verify(upcoming))
    try:
        async with asyncio.timeout(10):
            await answered.wait()
        monkeypatch.setattr(auth, "new_key", lambda: upcoming)
        request = NewApiKey(name="raced", scopes=["read"], accounts=["*"])
        await auth.create_key(store, stack.settings, request, created_by="test", authenticator=authenticator)
        async with asyncio.timeout(10):
            assert await authenticator.verify(upcoming) is not None  # not the stale query still in flight
    finally:
        release.set()
    assert await early is None  # it asked before the key existed
    assert await authenticator.verify(upcoming) is not None  # and its answer was not remembered


class FakeKeys:
    """A store that knows no key and counts the questions (the cache's own arithmetic, without a database)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def by_digest(self, digest: str) -> StoredKey | None:
        self.asked.append(digest)
        return None


async def test_an_unknown_key_is_looked_up_again_after_the_ttl_and_the_memory_of_unknown_keys_is_bounded() -> None:
    now = [1000.0]
    store = FakeKeys()
    authenticator = Authenticator(store, ttl_s=5, clock=lambda: now[0], cache_limit=100)  # type: ignore[arg-type]
    unknown = new_key()
    for _ in range(10):
        assert await authenticator.verify(unknown) is None
    assert len(store.asked) == 1
    now[0] += 4.9
    assert await authenticator.verify(unknown) is None and len(store.asked) == 1
    now[0] += 0.2
    assert await authenticator.verify(unknown) is None and len(store.asked) == 2

    flood = [new_key() for _ in range(250)]
    for key in flood:
        await authenticator.verify(key)
    assert len(authenticator._unknown) <= 100
    asked = len(store.asked)
    await authenticator.verify(flood[-1])  # the newest are remembered
    assert len(store.asked) == asked
    await authenticator.verify(flood[0])  # the oldest were let go
    assert len(store.asked) == asked + 1


# ----- the dev key file --------------------------------------------------------------------------------------


async def test_a_world_readable_dev_key_file_is_replaced_by_a_private_one_and_never_holds_the_new_key(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = settings.data_dir / DEV_KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("at_" + "x" * 43 + "\n")  # a key the store never heard of, readable by others
    os.chmod(path, 0o644)
    readable = tmp_path / "readable-link"
    os.link(path, readable)  # another name for the 0644 file: whatever is written into it shows here
    async with store_on(settings.effective_database_url()) as store:
        await ensure_dev_key(store, settings)
        secret = path.read_text().strip()
        stored = await store.by_digest(digest_of(secret))
    assert stored is not None and stored.active
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret not in readable.read_text()  # the old, readable file never held the new key
    assert stat.S_IMODE(readable.stat().st_mode) == 0o644 and not path.samefile(readable)
    assert [p.name for p in path.parent.iterdir() if DEV_KEY_FILE in p.name] == [DEV_KEY_FILE]  # no temporary left
