"""Real servers for tests: a throwaway PostgreSQL cluster and Redis server on free loopback ports, and the
paper exchange and the API as OS processes.

Under CI=true a missing server binary is a failure, never a skip (the Makefile installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.stack import TEST_API_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: required, not skipped; `make test` installs it)")
    pytest.skip(reason)


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster in a temp dir; yield an asyncpg SQLAlchemy URL; stop it whatever happens."""
    bindir = postgres_bin()
    if bindir is None:
        _unavailable("PostgreSQL binaries (initdb, pg_ctl) not found")
    assert bindir is not None
    workdir = Path(tempfile.mkdtemp(prefix="aiotrade-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(workdir, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", free_port()
    run = lambda *args: subprocess.run([*as_postgres, *args], check=True, capture_output=True)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "app", "--no-sync")
        run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w", "start",
            "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}") from exc
    try:
        yield f"postgresql+asyncpg://app@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def redis_bin() -> str | None:
    return shutil.which("redis-server")


@dataclass
class RedisProcess:
    """A running ``redis-server`` (no persistence) on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it by its pid (SIGKILL: as if it crashed)."""
        stop_process(self.proc, sig=sig)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(port: int | None = None) -> RedisProcess:
    """Start ``redis-server --port P --bind 127.0.0.1 --save '' --appendonly no`` and wait for PING.
    A given ``port`` lets a test bring "the same" Redis back after stopping it."""
    binary = redis_bin()
    if binary is None:
        _unavailable("redis-server not found")
    assert binary is not None
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="aiotrade-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisProcess(proc, port, workdir)
    deadline = time.monotonic() + 10
    while not _redis_answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"redis-server did not start on port {port} (exit {proc.poll()})")
        time.sleep(0.02)
    return server


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A redis-server for the block: yields ``redis://127.0.0.1:P/0``; stopped by its pid whatever happens."""
    server = start_redis(port)
    try:
        yield server.url
    finally:
        server.stop()


def stop_process(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout_s: float = 10) -> None:
    """Stop ``proc`` (by its pid) and reap it; kill it if it does not go in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# ----- the paper exchange and the API as processes ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """A server process started by ``serve_process``: its base URL and its log."""

    proc: asyncio.subprocess.Process
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def serve_process(
    name: str, args: list[str], env: dict[str, str], *, port: int, ready_path: str, log_dir: Path, timeout_s: float = 60
) -> AsyncIterator[Served]:
    """Start ``python -m aiotrade <args>``, wait until ``ready_path`` answers 200, stop it with SIGINT."""
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:  # noqa: ASYNC230 - a local file opened once per process start
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiotrade", *args, env={**os.environ, **env}, stdout=out, stderr=out, cwd=ROOT
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{served.log_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(served.url + ready_path)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout_s} s:\n{served.log_text()[-3000:]}")
                await asyncio.sleep(0.1)
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def paper_env(port: int, **settings: object) -> dict[str, str]:
    """Environment for ``python -m aiotrade paper`` on ``port``; ``settings`` become AIOTRADE_PAPER_<NAME>."""
    return {
        "AIOTRADE_PAPER_HOST": "127.0.0.1",
        "AIOTRADE_PAPER_PORT": str(port),
        **{f"AIOTRADE_PAPER_{key.upper()}": str(value) for key, value in settings.items()},
    }


def api_env(paper_url: str, data_dir: Path, **settings: object) -> dict[str, str]:
    """Environment for ``python -m aiotrade serve`` against a paper exchange process; ``settings`` become
    AIOTRADE_<NAME> (nested with ``__``)."""
    return {
        "AIOTRADE_VENUES__PAPER__BASE_URL": paper_url,
        "AIOTRADE_DATA_DIR": str(data_dir),
        "AIOTRADE_LOG_LEVEL": "WARNING",
        "AIOTRADE_EQUITY_INTERVAL_S": "3600",
        "AIOTRADE_ORDERS__RECONCILE_INTERVAL_S": "3600",
        # The key every test client sends (see tests.support.stack): stored at start-up by each process.
        "AIOTRADE_AUTH__BOOTSTRAP_KEY": TEST_API_KEY,
        **{f"AIOTRADE_{key.upper()}": str(value) for key, value in settings.items()},
    }
