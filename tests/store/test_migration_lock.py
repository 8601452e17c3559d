"""Several processes migrating one fresh SQLite file at once take turns (a file lock beside the database), so
`serve --workers 3` on a fresh data directory always starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from pathlib import Path

import httpx

from tests.support.servers import ROOT, api_env, free_port, paper_env, serve_process


async def migrate_at_once(data_dir: Path, processes: int) -> list[tuple[int, str]]:
    env = {**os.environ, "AIOTRADE_DATA_DIR": str(data_dir), "AIOTRADE_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "aiotrade", "migrate"]
    out = asyncio.subprocess.PIPE
    started = [
        await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT)
        for _ in range(processes)
    ]
    outputs = [(await asyncio.wait_for(proc.communicate(), 120))[0] for proc in started]
    return [(proc.returncode or 0, text.decode(errors="replace")) for proc, text in zip(started, outputs, strict=True)]


async def test_three_processes_migrating_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    for round_ in range(2):
        data_dir = tmp_path / f"round{round_}"
        results = await migrate_at_once(data_dir, 3)
        assert [code for code, _ in results] == [0, 0, 0], [text[-1500:] for _, text in results]
        with contextlib.closing(sqlite3.connect(data_dir / "aiotrade.db")) as db:
            versions = db.execute("SELECT count(*) FROM alembic_version").fetchone()
        assert versions == (1,)


async def test_serve_with_three_workers_starts_on_a_fresh_data_directory_every_time(tmp_path: Path) -> None:
    paper_port = free_port()
    async with serve_process(
        "paper", ["paper"], paper_env(paper_port), port=paper_port, ready_path="/api/v3/ping", log_dir=tmp_path
    ) as paper:
        for attempt in range(2):  # each time on a fresh directory (the migration lock itself: the test above)
            api_port = free_port()
            async with serve_process(
                f"api{attempt}",
                ["serve", "--port", str(api_port), "--workers", "3"],
                api_env(paper.url, tmp_path / f"fresh{attempt}"),
                port=api_port,
                ready_path="/readyz",
                log_dir=tmp_path,
                timeout_s=90,
            ) as api:
                async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
                    answers = await asyncio.gather(*(client.get("/healthz") for _ in range(30)))
                assert all(r.status_code == 200 for r in answers), attempt
                log = api.log_text()
            assert "already exists" not in log and "Traceback" not in log, log[-3000:]
