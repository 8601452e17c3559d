"""Exactly once across a PostgreSQL dump and restore: Idempotency-Keys, their answers and our client order ids
live in the database, so a replica started on a restored dump replays what was answered and resumes what was
in flight — never a second order. Checked against the paper exchange's own ledger.

Real parts: PostgreSQL (pg_dump -Fc, pg_restore into a fresh database), the app, ccxt, the paper exchange.
Control: a dump taken before the order does not know it, and the same retry then places a second one.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aiotrade.config import OrdersConfig
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.paper.server import PaperExchange
from aiotrade.store.db import make_engine
from tests.support.faults import Scripted
from tests.support.servers import postgres_bin
from tests.support.stack import app_instance, stack_settings

ORDERS = "/api/v1/accounts/paper/orders"
BUY = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
LEASE_S = 1.0  # short, so the restored in-flight key can be taken over within the test


class Databases:
    """Fresh databases on the session's PostgreSQL server, dumped and restored with its own tools."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.made: list[str] = []

    def url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    async def create(self) -> str:
        name = "restore_" + secrets.token_hex(4)
        await self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return name

    async def dump(self, name: str, into: Path) -> Path:
        await self._tool("pg_dump", "-Fc", "-f", str(into), "-d", name)
        return into

    async def restore(self, dump: Path) -> str:
        name = await self.create()
        await self._tool("pg_restore", "--no-owner", "--exit-on-error", "-d", name, str(dump))
        return name

    async def drop_all(self) -> None:
        for name in self.made:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, statement: str) -> None:
        engine = make_engine(self.server_url)
        try:
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def _tool(self, tool: str, *args: str) -> None:
        url = make_url(self.server_url)
        process = await asyncio.create_subprocess_exec(
            client_tool(tool), "-h", str(url.host), "-p", str(url.port), "-U", str(url.username), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode(errors="replace")


def client_tool(tool: str) -> str:
    """pg_dump or pg_restore of the server's own version (initdb may be a lone symlink on PATH)."""
    bindir = postgres_bin()
    assert bindir is not None
    beside = (bindir / "initdb").resolve().parent / tool
    found = str(beside) if beside.exists() else shutil.which(tool)
    assert found is not None, f"{tool} not found"
    return found


@pytest.fixture
async def databases(postgres_url: str) -> AsyncIterator[Databases]:
    made = Databases(postgres_url)
    try:
        yield made
    finally:
        await made.drop_all()


def client_ids(paper: PaperExchange) -> Counter[str]:
    return Counter(str(o["clientOrderId"]) for o in paper.state.private.engine.ledger())


async def test_a_replica_on_a_restored_dump_replays_answers_and_resumes_orders_in_flight_exactly_once(
    databases: Databases, tmp_path: Path
) -> None:
    orders = OrdersConfig(reconcile_interval_s=3600, idempotency_lease_s=LEASE_S)
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        source = await databases.create()
        settings = stack_settings(paper.url, tmp_path, database_url=databases.url(source), orders=orders)
        stale = tmp_path / "before.dump"
        async with app_instance(settings) as (app, api):
            await databases.dump(source, stale)  # the schema, but no order yet
            done = await api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "done"})
            assert done.status_code == 201, done.text
            # Executed by the exchange, its answer held: the dump sees the order PENDING and its key claimed.
            paper.set_fault_policy(
                Scripted("POST", "/api/v3/order", [Fault(FaultKind.COMMIT_THEN_SLOW, delay_ms=1500)])
            )
            flying = asyncio.create_task(api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "flying"}))
            while not await app.state.store.in_flight("paper"):  # noqa: ASYNC110 - admitted: PENDING
                await asyncio.sleep(0.01)
            while len(client_ids(paper)) < 2:  # noqa: ASYNC110 - executed by the exchange, answer held
                await asyncio.sleep(0.01)
            backup = await databases.dump(source, tmp_path / "during.dump")
            assert (await flying).status_code == 201
        first, second = done.json()["id"], (await flying).json()["id"]
        assert client_ids(paper) == Counter({first: 1, second: 1})

        restored = await databases.restore(backup)
        settings = stack_settings(paper.url, tmp_path, database_url=databases.url(restored), orders=orders)
        async with app_instance(settings) as (app, api):
            replayed = await api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "done"})
            assert (replayed.status_code, replayed.headers.get("Idempotent-Replayed")) == (201, "true")
            assert replayed.json() == done.json()
            await asyncio.sleep(LEASE_S + 0.2)  # the restored claim's lease runs out; a retry takes it over
            resumed = await api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "flying"})
            assert resumed.status_code == 201, resumed.text
            assert (resumed.json()["id"], resumed.json()["status"]) == (second, "FILLED")
            assert "create_resumed" in [e.event for e in await app.state.store.audit_trail("paper", second)]
        assert client_ids(paper) == Counter({first: 1, second: 1})  # nothing was sent twice

        # Control: a dump from before the order knows neither the key nor the order; the retry sends again.
        stale_copy = await databases.restore(stale)
        settings = stack_settings(paper.url, tmp_path, database_url=databases.url(stale_copy), orders=orders)
        async with app_instance(settings) as (_, api):
            again = await api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "done"})
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") is None
        assert client_ids(paper)[first] == 2
