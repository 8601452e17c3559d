"""Real servers for tests: a throwaway PostgreSQL cluster on a free loopback port.

Under CI=true a missing server binary is a failure, never a skip (the Makefile installs it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


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
