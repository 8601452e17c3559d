"""The production shape on loopback for a load run: PostgreSQL and Redis (where installed), the paper
exchange process and several ``python -m aiotrade serve`` processes sharing them. Every server is started
here on a free port and stopped by its pid on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.common import BENCH_KEY, ROOT, free_port

API_KEY = BENCH_KEY  # the bootstrap key every replica stores (every scope, no inbound rate limit)


@dataclass
class Server:
    name: str
    proc: asyncio.subprocess.Process
    url: str
    log: Path


@dataclass
class Shape:
    paper: Server
    replicas: list[Server]
    database: str  # "postgresql" or "sqlite"
    redis: bool
    servers: list[Server] = field(default_factory=list)  # every process whose memory is watched


@contextlib.asynccontextmanager
async def production_shape(
    work: Path, *, replicas: int, venue_latency_ms: float, live_interval_s: float = 1.0, redis: bool = True
) -> AsyncIterator[Shape]:
    async with contextlib.AsyncExitStack() as stack:
        with_redis = redis and shutil.which("redis-server") is not None
        redis_url = await stack.enter_async_context(redis_server(work)) if with_redis else None
        database_url = await stack.enter_async_context(postgres_server()) if postgres_bin() else None
        if database_url is None and replicas > 1:
            print("loadtest: PostgreSQL not installed: one replica on SQLite", file=sys.stderr)
            replicas = 1
        paper_port = free_port()
        paper = await stack.enter_async_context(
            server(
                "paper", ["paper"], work, paper_port, "/api/v3/ping",
                AIOTRADE_PAPER_HOST="127.0.0.1", AIOTRADE_PAPER_PORT=str(paper_port),
                AIOTRADE_PAPER_LATENCY_MS=str(venue_latency_ms), AIOTRADE_PAPER_JITTER_MS="0",
            )
        )  # fmt: skip
        env = {
            "AIOTRADE_VENUES__PAPER__BASE_URL": paper.url,
            "AIOTRADE_LOG_LEVEL": "WARNING",
            "AIOTRADE_ACCESS_LOG": "false",
            "AIOTRADE_AUTH__BOOTSTRAP_KEY": API_KEY,
            "AIOTRADE_AUTH__BOOTSTRAP_RATE_LIMIT": "0",
            "AIOTRADE_LIVE_INTERVAL_S": str(live_interval_s),
            "AIOTRADE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{work / 'aiotrade.db'}",
        }
        if redis_url:
            env["AIOTRADE_REDIS_URL"] = redis_url
        started = []
        for i in range(replicas):  # one after the other: the first migrates, the others find it done
            port = free_port()
            started.append(
                await stack.enter_async_context(
                    server(f"api{i}", ["serve", "--port", str(port)], work, port, "/readyz",
                           AIOTRADE_DATA_DIR=str(work / f"api{i}"), **env)
                )
            )  # fmt: skip
        yield Shape(paper, started, "postgresql" if database_url else "sqlite", bool(redis_url), [paper, *started])


@contextlib.asynccontextmanager
async def server(name: str, args: list[str], work: Path, port: int, ready: str, **env: str) -> AsyncIterator[Server]:
    log = work / f"{name}.log"
    with open(log, "wb") as out:  # noqa: ASYNC230 - opened once per process start
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiotrade", *args, env={**os.environ, **env}, stdout=out, stderr=out, cwd=ROOT
        )
    started = Server(name, proc, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_ready(started, ready)
        yield started
    finally:
        await stop(proc, signal.SIGINT)


async def _wait_ready(started: Server, path: str, timeout_s: float = 90) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        async with asyncio.timeout(timeout_s):
            while True:
                if started.proc.returncode is not None:
                    tail = started.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{started.name} exited with {started.proc.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(started.url + path)).status_code == 200:
                        return
                await asyncio.sleep(0.2)


async def stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if proc.returncode is None:
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# ----- PostgreSQL and Redis ----------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@contextlib.asynccontextmanager
async def postgres_server() -> AsyncIterator[str]:
    """A throwaway cluster (as the ``postgres`` user when run as root: initdb refuses root)."""
    binaries = postgres_bin()
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="aiotrade-loadtest-pg-"))  # its own: the postgres user must enter it
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    port = free_port()
    await _run(*as_user, str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "app")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    pg_ctl = [*as_user, str(binaries / "pg_ctl"), "-D", str(folder / "data")]
    await _run(*pg_ctl, "-l", str(folder / "log"), "-w", "start", "-o", options)
    try:
        yield f"postgresql+asyncpg://app@127.0.0.1:{port}/postgres"
    finally:
        await _run(*pg_ctl, "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def redis_server(work: Path) -> AsyncIterator[str]:
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)]
    proc = await asyncio.create_subprocess_exec(
        "redis-server", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(10):
            while not await _redis_answers(port):  # noqa: ASYNC110 (polling another process)
                await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        await stop(proc)


async def _redis_answers(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        return (await reader.read(16)).startswith(b"+PONG")
    finally:
        writer.close()
        await writer.wait_closed()


async def _run(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {output.decode(errors='replace')[-2000:]}")
