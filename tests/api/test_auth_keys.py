"""API keys across replicas and processes: a new key works at once everywhere, a revoked one stops working on
every replica within 5 s, a verified key costs no query within the cache; the bootstrap key, the dev key, the
serve-time refusal and the `keys` commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from aiotrade.__main__ import _prepare_to_serve, main
from aiotrade.api.auth import DEV_KEY_FILE, digest_of, ensure_bootstrap_key, ensure_dev_key, new_key
from aiotrade.config import AuthConfig, Settings
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.store.api_keys import ApiKeyStore
from aiotrade.store.db import make_engine, make_sessions, migrate
from tests.api.test_problems import assert_problem
from tests.support.stack import BASE_URL, app_instance, auth_headers, make_key, stack_settings

TICKER = "/api/v1/exchanges/paper/ticker"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    async with engine.begin() as connection:  # a clean schema per test on the shared server
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


@contextlib.asynccontextmanager
async def store_on(url: str) -> AsyncIterator[ApiKeyStore]:
    engine = make_engine(url)
    await migrate(engine)
    try:
        yield ApiKeyStore(make_sessions(engine))
    finally:
        await engine.dispose()


async def test_a_new_key_works_at_once_and_a_revoked_one_stops_on_every_replica_within_5_s(
    tmp_path: Path, database_url: str
) -> None:
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        settings = stack_settings(paper.url, tmp_path, database_url=database_url)
        async with app_instance(settings) as (app_a, api_a), app_instance(settings) as (app_b, _):
            made = await make_key(app_a, "roaming", "read")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app_b), base_url=BASE_URL, headers=auth_headers(made.key)
            ) as on_b:
                first = await on_b.get(TICKER, params={"symbol": "BTC/USDT"})
                assert first.status_code == 200, first.text  # made on A a moment ago, known to B at once
                lookups = app_b.state.authenticator.lookups
                for _ in range(50):
                    assert (await on_b.get(TICKER, params={"symbol": "BTC/USDT"})).status_code == 200
                assert app_b.state.authenticator.lookups == lookups  # no query per request within the cache

                assert (await api_a.delete("/api/v1/admin/keys/roaming")).status_code == 200
                revoked_at = time.monotonic()
                while (await on_b.get(TICKER, params={"symbol": "BTC/USDT"})).status_code == 200:
                    assert time.monotonic() - revoked_at < 5.5, "B still accepts a key revoked on A"
                    await asyncio.sleep(0.1)
                stopped_after = time.monotonic() - revoked_at
                assert_problem(await on_b.get(TICKER, params={"symbol": "BTC/USDT"}), 401)
            assert stopped_after <= 5.5


async def test_concurrent_requests_with_an_unseen_key_make_one_query(tmp_path: Path) -> None:
    async with (
        PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper,
        app_instance(stack_settings(paper.url, tmp_path)) as (app, _),
    ):
        made = await make_key(app, "burst", "read")
        authenticator = app.state.authenticator
        before = authenticator.lookups
        principals = await asyncio.gather(*(authenticator.verify(made.key) for _ in range(100)))
        assert {p.key_id for p in principals if p is not None} == {made.key_id}
        assert authenticator.lookups == before + 1
        # A key that is not ours is refused without a query, whatever it looks like.
        assert await authenticator.verify("at_short") is None
        assert await authenticator.verify("Bearer " + made.key) is None
        assert authenticator.lookups == before + 1


async def test_the_bootstrap_key_is_stored_once_by_every_replica_and_a_revoked_one_stays_revoked(
    tmp_path: Path, database_url: str
) -> None:
    key = new_key()
    settings = Settings(database_url=database_url, auth=AuthConfig(bootstrap_key=key))
    async with store_on(database_url) as store:
        await asyncio.gather(*(ensure_bootstrap_key(store, settings) for _ in range(4)))  # replicas starting together
        stored = [k for k in await store.list() if k.name == "bootstrap"]
        assert len(stored) == 1 and stored[0].active and set(stored[0].scopes) == {"read", "trade", "admin"}
        assert stored[0].accounts == ("*",) and stored[0].rate_limit == 0
        await store.revoke("bootstrap")
        await ensure_bootstrap_key(store, settings)  # a restart
        assert not (await store.by_digest(digest_of(key))).active  # type: ignore[union-attr]

        rotated = new_key()
        await ensure_bootstrap_key(store, Settings(database_url=database_url, auth=AuthConfig(bootstrap_key=rotated)))
        assert (await store.by_digest(digest_of(rotated))).active  # type: ignore[union-attr]


async def test_a_rotated_bootstrap_key_replaces_the_active_one(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    old, new = new_key(), new_key()
    async with store_on(url) as store:
        await ensure_bootstrap_key(store, Settings(database_url=url, auth=AuthConfig(bootstrap_key=old)))
        await ensure_bootstrap_key(store, Settings(database_url=url, auth=AuthConfig(bootstrap_key=new)))
        assert not (await store.by_digest(digest_of(old))).active  # type: ignore[union-attr]
        assert (await store.by_digest(digest_of(new))).active  # type: ignore[union-attr]


def test_a_bootstrap_key_that_is_not_one_of_ours_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOTRADE_AUTH__BOOTSTRAP_KEY", "hunter2")
    with pytest.raises(ValueError, match="bootstrap_key"):
        Settings()


def test_the_bootstrap_key_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    (tmp_path / "bootstrap-key").write_text(key + "\n")
    monkeypatch.setenv("AIOTRADE_AUTH__BOOTSTRAP_KEY_FILE", str(tmp_path / "bootstrap-key"))
    assert Settings().auth.bootstrap_key.get_secret_value() == key  # type: ignore[union-attr]


async def test_the_dev_key_is_kept_while_the_store_knows_it_and_remade_when_it_does_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = settings.data_dir / DEV_KEY_FILE
    async with store_on(settings.effective_database_url()) as store:
        await ensure_dev_key(store, settings)
        first = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = await store.by_digest(digest_of(first))
        assert stored is not None and stored.active and set(stored.scopes) == {"read", "trade", "admin"}
        assert stored.rate_limit == 0 and stored.accounts == ("*",)

        await ensure_dev_key(store, settings)
        assert path.read_text().strip() == first  # a restart keeps it

        await store.revoke("dev")
        await ensure_dev_key(store, settings)
        second = path.read_text().strip()
        assert second != first and (await store.by_digest(digest_of(second))).active  # type: ignore[union-attr]

        path.write_text("at_" + "x" * 43)  # a file the store never heard of
        os.chmod(path, 0o644)
        await ensure_dev_key(store, settings)
        third = path.read_text().strip()
        assert third not in (second, "at_" + "x" * 43) and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not (await store.by_digest(digest_of(second))).active  # type: ignore[union-attr]  # one dev key


async def test_serving_off_loopback_without_an_active_key_is_refused_with_directions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    refusal = await _prepare_to_serve(settings, "0.0.0.0", 8000)
    assert refusal is not None and "keys create" in refusal and "AIOTRADE_AUTH__BOOTSTRAP_KEY" in refusal
    assert not (settings.data_dir / DEV_KEY_FILE).exists()  # no dev key off loopback
    with_key = Settings(data_dir=tmp_path / "data", auth=AuthConfig(bootstrap_key=new_key()))
    assert await _prepare_to_serve(with_key, "0.0.0.0", 8000) is None
    assert await _prepare_to_serve(settings, "0.0.0.0", 8000) is None  # the bootstrap key is in the store now


def test_serve_refuses_to_start_off_loopback_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("AIOTRADE_DATA_DIR", str(tmp_path / "data"))
    assert main(["serve", "--host", "0.0.0.0", "--port", "9"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err


def test_keys_create_prints_the_key_alone_on_the_last_line_and_list_and_revoke_follow(tmp_path: Path) -> None:
    env = {**os.environ, "AIOTRADE_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aiotrade", "keys", *args], env=env, cwd=tmp_path, capture_output=True, text=True
        )

    made = run("create", "--name", "ci", "--scopes", "read,trade", "--accounts", "paper", "--rate-limit", "0")
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[-1]
    assert re.fullmatch(r"at_[A-Za-z0-9_-]{43}", key) and made.stdout.strip() == key
    assert key not in made.stderr
    listed = run("list")
    assert "ci" in listed.stdout and "rate=unlimited" in listed.stdout and key not in listed.stdout + listed.stderr
    assert run("create", "--name", "ci", "--scopes", "read", "--accounts", "paper").returncode == 2
    assert run("create", "--name", "x", "--scopes", "fly", "--accounts", "paper").returncode == 2
    assert run("revoke", "ci").returncode == 0
    assert run("revoke", "ci").returncode == 1
    assert "revoked" in run("list").stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_make_run_writes_a_dev_key_before_readyz_answers_and_the_key_opens_the_api(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "AIOTRADE_DATA_DIR": "data", "AIOTRADE_EQUITY_INTERVAL_S": "3600"}
    env.pop("AIOTRADE_AUTH__BOOTSTRAP_KEY", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiotrade", "serve", "--port", str(port), cwd=tmp_path, env=env, stdout=out,
            stderr=out,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                async with asyncio.timeout(60):
                    while True:
                        assert proc.returncode is None, log.read_text()
                        with contextlib.suppress(httpx.TransportError):
                            if (await client.get("/readyz")).status_code == 200:
                                break
                        await asyncio.sleep(0.1)
                path = tmp_path / "data" / DEV_KEY_FILE
                assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
                key = path.read_text().strip()
                assert_problem(await client.get(TICKER, params={"symbol": "BTC/USDT"}), 401)
                ok = await client.get(TICKER, params={"symbol": "BTC/USDT"}, headers=auth_headers(key))
                assert ok.status_code == 200, ok.text
                rebound = {**auth_headers(key), "Host": "evil.example"}  # DNS rebinding
                evil = await client.get(TICKER, params={"symbol": "BTC/USDT"}, headers=rebound)
                assert_problem(evil, 400)
        finally:
            proc.send_signal(2)
            await asyncio.wait_for(proc.wait(), 20)
    output = log.read_text()
    assert 'export AUTH="Authorization: Bearer $(cat data/dev-api-key)"' in output  # as the README says
    assert 'curl -H "$AUTH"' in output and "/dashboard" in output
    assert key not in output
