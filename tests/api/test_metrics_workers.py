"""GET /metrics of `serve --workers 2`: whichever worker answers the scrape, it counts every worker's requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import api_env, free_port, paper_env, serve_process
from tests.support.stack import auth_headers

BURST = 20
ROUTE = "/api/v1/exchanges"


def exchanges_count(body: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "aiotrade_http_request_duration_seconds_count"
        and sample.labels.get("route") == ROUTE
        and sample.labels.get("status") == "200"
    )


def exchanges_count_in(path: Path) -> float:
    """The requests one worker's own file holds (prometheus_client's merge over that file alone)."""
    return sum(
        sample.value
        for metric in multiprocess.MultiProcessCollector.merge([str(path)], accumulate=True)
        for sample in metric.samples
        if sample.name == "aiotrade_http_request_duration_seconds_count"
        and sample.labels.get("route") == ROUTE
        and sample.labels.get("status") == "200"
    )


async def test_every_scrape_of_two_workers_counts_both_workers_requests(tmp_path: Path) -> None:
    paper_port, api_port = free_port(), free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **api_env("", tmp_path / "api", compute__workers=1),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),  # the operator's own: lets the test see each worker's files
    }
    async with serve_process(
        "paper", ["paper"], paper_env(paper_port), port=paper_port, ready_path="/api/v3/ping", log_dir=tmp_path
    ) as paper:
        env["AIOTRADE_VENUES__PAPER__BASE_URL"] = paper.url
        async with serve_process(
            "api",
            ["serve", "--port", str(api_port), "--workers", "2"],
            env,
            port=api_port,
            ready_path="/readyz",
            log_dir=tmp_path,
            timeout_s=90,
        ) as api:
            # Bursts of concurrent requests, each on its own connection, until both workers have answered some
            # (the kernel hands a connection to whichever worker accepts first).
            closing = {**auth_headers(), "Connection": "close"}
            sent = 0
            async with httpx.AsyncClient(base_url=api.url, headers=closing, timeout=10) as client:
                for _ in range(20):
                    answers = await asyncio.gather(*(client.get(ROUTE) for _ in range(BURST)))
                    assert all(a.status_code == 200 for a in answers)
                    sent += BURST
                    if len([n for n in per_worker(metrics_dir).values() if n]) == 2:
                        break
                scrapes = [await client.get("/metrics") for _ in range(6)]
    counts = per_worker(metrics_dir)
    assert len([n for n in counts.values() if n]) == 2, counts  # both workers answered some
    assert all(s.status_code == 200 for s in scrapes)
    # Whichever worker answered a scrape, it counted the other's requests too.
    assert [exchanges_count(s.text) for s in scrapes] == [sent] * len(scrapes)


def per_worker(directory: Path) -> dict[str, float]:
    return {path.name: exchanges_count_in(path) for path in directory.iterdir() if path.name.startswith("histogram_")}
