"""Every Prometheus metric of aiotrade, defined once, and ``render_metrics()`` for ``GET /metrics``.

Label values must come from small sets: route *templates* (never raw paths), venue and account names from the
settings, ccxt endpoint templates (``public/ticker/24hr``), outcome slugs from the error table.

Several workers (``serve --workers N``): prometheus_client's multiprocess mode. The serve command points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory *before* the workers start (`multiprocess_dir`), each worker
writes its values there, and `render_metrics` merges every worker's files, so any worker answers for all.
prometheus_client picks its mode when it is first imported, so the variable must be set before that.
Gauges say how workers combine (``multiprocess_mode``): "live" modes drop a worker's values once it has gone,
which `render_metrics` notices by itself (`sweep_dead_processes`); a worker that stops cleanly can also say so
with ``mark_process_dead(os.getpid())`` on its way out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WAITS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LAGS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# ----- HTTP (api/middleware.py) --------------------------------------------------------------------

HTTP_REQUEST_DURATION = Histogram(
    "aiotrade_http_request_duration_seconds",
    "Time from request to the end of the response, by route template, method and status.",
    ("route", "method", "status"),
    buckets=_FAST,
)
WEBSOCKET_HANDSHAKES = Counter(
    "aiotrade_websocket_handshakes_total",
    "WebSocket handshakes by route template and status (101 accepted, otherwise the refusal).",
    ("route", "status"),
)

# ----- the way out to exchanges (exchange/) --------------------------------------------------------

UPSTREAM_REQUESTS = Counter(
    "aiotrade_upstream_requests_total",
    "HTTP requests sent to a venue, by endpoint template and outcome ('ok' or the domain error slug).",
    ("venue", "endpoint", "outcome"),
)
UPSTREAM_REQUEST_DURATION = Histogram(
    "aiotrade_upstream_request_duration_seconds",
    "Time a venue took to answer one HTTP request (limiter wait excluded).",
    ("venue", "endpoint"),
    buckets=_FAST,
)
UPSTREAM_RETRIES = Counter(
    "aiotrade_upstream_retries_total",
    "Reads attempted again after a transient failure.",
    ("venue", "endpoint"),
)
LIMITER_WAIT = Histogram(
    "aiotrade_limiter_wait_seconds",
    "Time a request waited for the venue's weight budget before it was sent.",
    ("venue",),
    buckets=_WAITS,
)
LIMITER_BUDGET_USED = Gauge(
    "aiotrade_limiter_budget_used_ratio",
    "Share of the venue's weight budget in use in the current window (0..1); the busiest worker.",
    ("venue",),
    multiprocess_mode="livemax",
)
CIRCUIT_STATE = Gauge(
    "aiotrade_circuit_state",
    "The venue's circuit breaker: 0 closed, 1 half-open, 2 open; the worst worker.",
    ("venue",),
    multiprocess_mode="livemax",
)
CACHE_REQUESTS = Counter(
    "aiotrade_cache_requests_total",
    "Market-data cache look-ups by kind and result (hit, miss, joined: waited for a load in flight).",
    ("kind", "result"),
)

# ----- orders ------------------------------------------------------------------------------------------

ORDER_TRANSITIONS = Counter(
    "aiotrade_order_transitions_total",
    "Order state transitions recorded in the store.",
    ("from", "to"),
)
RECONCILER_RUNS = Counter("aiotrade_reconciler_runs_total", "Reconciler passes started.")
RECONCILER_SETTLEMENTS = Counter(
    "aiotrade_reconciler_settlements_total",
    "Ambiguous orders the reconciler settled, by outcome.",
    ("outcome",),
)
IDEMPOTENCY_REPLAYS = Counter(
    "aiotrade_idempotency_replays_total",
    "Requests answered with the stored response of an earlier request with the same Idempotency-Key.",
)

# ----- live stream, event loop, compute ---------------------------------------------------------

LIVE_SUBSCRIBERS = Gauge(
    "aiotrade_live_subscribers",
    "Live-stream subscribers connected, all workers together.",
    multiprocess_mode="livesum",
)
LIVE_DROPPED = Counter("aiotrade_live_dropped_total", "Live-stream subscribers dropped for being too slow.")
EVENT_LOOP_LAG = Histogram(
    "aiotrade_event_loop_lag_seconds",
    "How late the event loop woke a sleeper (one observation per loop-monitor sample).",
    buckets=_LAGS,
)
COMPUTE_JOBS = Gauge(
    "aiotrade_compute_jobs",
    "Heavy computations by state (queued, running), all workers together.",
    ("state",),
    multiprocess_mode="livesum",
)


# ----- helpers -----------------------------------------------------------------------------------------


def record_upstream(venue: str, endpoint: str, outcome: str, seconds: float) -> None:
    """One HTTP request to a venue: its outcome ('ok' or a domain error slug) and how long it took."""
    UPSTREAM_REQUESTS.labels(venue, endpoint, outcome).inc()
    UPSTREAM_REQUEST_DURATION.labels(venue, endpoint).observe(seconds)


def record_transition(old: str, new: str) -> None:
    """An order moved from ``old`` to ``new`` (``from`` is a Python keyword, hence positional labels)."""
    ORDER_TRANSITIONS.labels(old, new).inc()


def render_metrics() -> tuple[bytes, str]:
    """The exposition for ``GET /metrics``: (body, content type); every worker's values in multiprocess mode."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    sweep_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of worker ``pid`` (multiprocess mode only; a no-op otherwise)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.mark_process_dead(pid, directory)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def sweep_dead_processes(directory: str) -> list[int]:
    """Mark dead every worker whose live-gauge files remain but whose process is gone; returns their pids.

    uvicorn has no hook for a worker's death (gunicorn's ``child_exit`` is where this usually goes), so the
    scrape does it: a directory listing and one ``kill(pid, 0)`` per worker.
    """
    pids = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            match = _LIVE_GAUGE_FILE.fullmatch(name)
            if match:
                pids.add(int(match.group(1)))
    dead = [pid for pid in sorted(pids) if not _alive(pid)]
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return dead


@contextlib.contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """For the serve command, around ``uvicorn.run``: with several workers and no ``PROMETHEUS_MULTIPROC_DIR``
    of the operator's, a fresh one for this run (removed afterwards); yields the directory in use, or None."""
    existing = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 or existing:
        yield existing
        return
    directory = tempfile.mkdtemp(prefix="aiotrade-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
