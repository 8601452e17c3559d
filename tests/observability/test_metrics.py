"""Metrics across worker processes (real subprocesses sharing a multiprocess directory) and in one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families

from aiotrade.observability import metrics

# A worker: counts its requests, holds its subscribers, says "ready", and lives until its stdin closes.
WORKER = """
import sys
from aiotrade.observability import metrics
n = int(sys.argv[1])
for _ in range(n):
    metrics.record_upstream("paper", "public/ticker/24hr", "ok", 0.01)
metrics.LIVE_SUBSCRIBERS.inc(n)
metrics.CIRCUIT_STATE.labels("paper").set(n % 3)
print("ready", flush=True)
sys.stdin.read()
"""


def start_worker(directory: Path, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(count)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    return worker


def stop_worker(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.close()
    try:
        assert worker.wait(timeout=10) == 0
    finally:
        worker.stdout.close()


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


TICKER = frozenset({("venue", "paper"), ("endpoint", "public/ticker/24hr")})
UPSTREAM_OK = ("aiotrade_upstream_requests_total", TICKER | {("outcome", "ok")})
SUBSCRIBERS = ("aiotrade_live_subscribers", frozenset())
CIRCUIT = ("aiotrade_circuit_state", frozenset({("venue", "paper")}))


def test_counters_and_gauges_of_two_worker_processes_show_up_in_one_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = start_worker(tmp_path, 3), start_worker(tmp_path, 4)
    try:
        monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
        body, content_type = metrics.render_metrics()
        live = samples(body)
        assert content_type.startswith("text/plain")
        assert live[UPSTREAM_OK] == 7
        assert live[SUBSCRIBERS] == 7  # livesum
        assert live[CIRCUIT] == 1  # livemax of 0 and 1
        assert live[("aiotrade_upstream_request_duration_seconds_count", TICKER)] == 7
    finally:
        stop_worker(first)
        stop_worker(second)
    after = samples(metrics.render_metrics()[0])
    assert after[UPSTREAM_OK] == 7  # what gone workers counted is kept
    assert SUBSCRIBERS not in after or after[SUBSCRIBERS] == 0  # their live gauges are not
    assert CIRCUIT not in after


def test_a_dead_worker_is_swept_and_a_live_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone, alive = start_worker(tmp_path, 2), start_worker(tmp_path, 5)
    try:
        stop_worker(gone)
        assert metrics.sweep_dead_processes(str(tmp_path)) == [gone.pid]
        monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
        assert samples(metrics.render_metrics()[0])[SUBSCRIBERS] == 5
    finally:
        stop_worker(alive)


def test_one_process_renders_the_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.IDEMPOTENCY_REPLAYS.inc()
    body, content_type = metrics.render_metrics()
    found = samples(body)
    assert content_type.startswith("text/plain")
    assert found[("aiotrade_idempotency_replays_total", frozenset())] >= 1
    assert any(name.startswith("process_") for name, _ in found)  # the default collectors come along


def test_every_gauge_says_how_worker_processes_combine() -> None:
    gauges = [value for value in vars(metrics).values() if isinstance(value, Gauge)]
    assert gauges
    assert all(gauge._multiprocess_mode != "all" for gauge in gauges)


def test_every_required_metric_is_defined_once() -> None:
    required = {
        "aiotrade_http_request_duration_seconds",
        "aiotrade_upstream_requests",
        "aiotrade_upstream_request_duration_seconds",
        "aiotrade_limiter_wait_seconds",
        "aiotrade_limiter_budget_used_ratio",
        "aiotrade_upstream_retries",
        "aiotrade_cache_requests",
        "aiotrade_circuit_state",
        "aiotrade_order_transitions",
        "aiotrade_reconciler_runs",
        "aiotrade_reconciler_settlements",
        "aiotrade_idempotency_replays",
        "aiotrade_live_subscribers",
        "aiotrade_live_dropped",
        "aiotrade_event_loop_lag_seconds",
        "aiotrade_compute_jobs",
    }
    defined = [value._name for value in vars(metrics).values() if hasattr(value, "_name") and hasattr(value, "_type")]
    assert required <= set(defined)
    assert len(defined) == len(set(defined))


def test_several_workers_get_a_fresh_directory_removed_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    with metrics.multiprocess_dir(1) as none:
        assert none is None and metrics.MULTIPROC_ENV not in os.environ
    with metrics.multiprocess_dir(4) as directory:
        assert directory is not None and Path(directory).is_dir() and not any(Path(directory).iterdir())
        assert os.environ[metrics.MULTIPROC_ENV] == directory
    assert not Path(directory).exists()
    assert metrics.MULTIPROC_ENV not in os.environ


def test_an_operators_own_directory_is_used_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    with metrics.multiprocess_dir(4) as directory:
        assert directory == str(tmp_path)
    assert tmp_path.is_dir() and os.environ[metrics.MULTIPROC_ENV] == str(tmp_path)
