"""Heavy maths through the real app (`tests/support/stack.py`, and `python -m aiotrade serve` processes):
four maximum-size probability requests all succeed on the default settings while the loop stays free;
budgets are 422s naming their fields before anything is fetched; closing the app cuts a running job off
with a 503 problem and leaves no worker; Ctrl-C and SIGKILL of a serve process leave no process behind;
services reach the heavy maths only through the compute pool (read from the sources, with a self-check).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import psutil

from aiotrade.compute import ComputeSettings, available_cpus
from aiotrade.quant import jobs
from tests.support.servers import ROOT, free_port
from tests.support.stack import TEST_API_KEY, Stack, auth_headers, running_stack

PROBABILITY = "/api/v1/risk/probability"
PORTFOLIO = "/api/v1/risk/portfolio"
# Today's documented maximum (README): 100,000 paths of 1,000 bars over the longest lookback.
MAXIMUM = {
    "symbol": "BTC/USDT", "take_profit": "80000", "stop_loss": "40000", "paths": 100_000, "horizon_bars": 1_000,
    "lookback": 2_000,
}  # fmt: skip
# Generous: a maximum request's maths takes seconds on one core; on the loop it would stall it that long.
LOOP_LAG_BOUND_MS = 200.0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_four_maximum_probability_requests_all_succeed_and_the_loop_stays_free(stack: Stack) -> None:
    compute = stack.app.state.compute
    assert compute.workers == max(1, available_cpus()) and compute.settings == ComputeSettings()  # the defaults
    await stack.api.post(PROBABILITY, json={**MAXIMUM, "paths": 100, "horizon_bars": 5})  # candles fetched once
    stack.app.state.loop_monitor.read(reset=True)

    responses = await asyncio.gather(*(stack.api.post(PROBABILITY, json=MAXIMUM) for _ in range(4)))

    assert [r.status_code for r in responses] == [200] * 4, [r.text[:300] for r in responses]
    assert len({r.text for r in responses}) == 1  # same seed, same answer, whichever worker ran it
    lag = stack.app.state.loop_monitor.read()
    assert lag.samples > 10 and lag.max_lag_ms < LOOP_LAG_BOUND_MS, lag
    assert compute.stats().completed >= 5 and compute.stats().running == 0


def test_the_loop_bound_would_catch_the_maths_on_the_loop() -> None:
    # Control: a quarter of one maximum request, run the way it ran before (in the loop's thread), takes
    # longer than the bound the test above holds the loop monitor to.
    closes = 100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.0, 0.02, 2_001)))
    started = time.perf_counter()
    jobs.probability_job(
        closes, entry=100.0, take_profit=120.0, stop_loss=85.0, side="long", horizon_bars=1_000, paths=25_000, seed=7
    )
    assert (time.perf_counter() - started) * 1000 > LOOP_LAG_BOUND_MS


async def test_requests_over_budget_are_422_naming_their_fields_and_fetch_nothing(tmp_path: Path) -> None:
    budgets = ComputeSettings(max_path_steps=1_000_000, max_candles=1_000)
    async with running_stack(tmp_path, compute=budgets) as stack:
        klines = stack.paper_requests("/api/v3/klines")
        probability = await stack.api.post(PROBABILITY, json={**MAXIMUM, "paths": 10_000, "horizon_bars": 101})
        portfolio = await stack.api.post(PORTFOLIO, json={"symbols": ["BTC/USDT", "ETH/USDT"], "lookback": 501})
        allocation = await stack.api.post(
            "/api/v1/portfolio/allocations", json={"symbols": ["BTC/USDT", "ETH/USDT"], "lookback": 501}
        )
        fetched_by_refused = stack.paper_requests("/api/v3/klines") - klines
        within = await stack.api.post(PROBABILITY, json={**MAXIMUM, "paths": 10_000, "horizon_bars": 100})
        fetched_by_within = stack.paper_requests("/api/v3/klines") - klines
    assert probability.status_code == 422 and probability.headers["content-type"].startswith("application/problem")
    assert [e["name"] for e in probability.json()["errors"]] == ["paths", "horizon_bars"]
    assert "1,010,000 exceeds the budget of 1,000,000" in probability.json()["detail"]
    for refused in (portfolio, allocation):
        assert refused.status_code == 422, refused.text
        assert [e["name"] for e in refused.json()["errors"]] == ["symbols", "lookback"]
    assert within.status_code == 200, within.text
    assert fetched_by_refused == 0 and fetched_by_within > 0  # the count does see candle pages


async def test_the_budgets_are_documented_in_the_openapi_fields(stack: Stack) -> None:
    schemas = (await stack.api.get("/openapi.json")).json()["components"]["schemas"]
    for model, fields in (
        ("ProbabilityRequest", ("paths", "horizon_bars")),
        ("PortfolioRiskRequest", ("symbols", "lookback")),
        ("AllocationRequest", ("symbols", "lookback")),
    ):
        for field in fields:
            assert "budget" in schemas[model]["properties"][field].get("description", "").lower(), (model, field)


# ----- the maths is reachable from services only through the offload ---------------------------------

SERVICES = Path(__file__).resolve().parents[1] / "src" / "aiotrade" / "services"
# Entry points that take from milliseconds to seconds: services may reach them only through quant.jobs.
HEAVY = {
    "aiotrade.quant.probability": {"monte_carlo_outcome", "estimate_drift_diffusion", "trade_outcome"},
    "aiotrade.quant.risk": {"portfolio_risk"},
    "aiotrade.quant.allocation": {"calculate_allocations"},
    "aiotrade.quant.allocation_hrp": None,  # None: every name
}


def offload_offences(source: str) -> list[str]:
    """Heavy quant calls in `source` that do not go through `<pool>.run(jobs.<x>_job, ...)`."""
    tree = ast.parse(source)
    aliases: dict[str, tuple[str, str | None]] = {}  # local name -> (module, name or None for the module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiotrade.quant"):
            for alias in node.names:
                as_module = f"{node.module}.{alias.name}"
                target = (as_module, None) if node.module == "aiotrade.quant" else (node.module, alias.name)
                aliases[alias.asname or alias.name] = target
    offloaded = {
        id(call.args[0])
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run" and call.args
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module, name = aliases[node.value.id][0], node.attr
        elif isinstance(node, ast.Name) and node.id in aliases and aliases[node.id][1] is not None:
            module, name = aliases[node.id]
        else:
            continue
        if module == "aiotrade.quant.jobs" and name.endswith("_job") and id(node) not in offloaded:
            found.append(f"{node.lineno}: jobs.{name} called on the loop")
        elif module in HEAVY and (HEAVY[module] is None or name in HEAVY[module]):
            found.append(f"{node.lineno}: {module}.{name} on the loop")
    return found


def test_services_reach_the_heavy_maths_only_through_the_compute_pool() -> None:
    files = sorted(SERVICES.rglob("*.py"))
    assert files
    found = [f"{p.relative_to(SERVICES)}:{o}" for p in files for o in offload_offences(p.read_text())]
    assert not found, "heavy maths on the event loop:\n" + "\n".join(found)
    assert "compute.run(" in (SERVICES / "risk" / "analytics.py").read_text()  # the allowed form is scanned


def test_the_offload_scan_catches_maths_on_the_loop() -> None:
    allowed = """
from aiotrade.quant import jobs
async def f(compute, x):
    return await compute.run(jobs.probability_job, x)
"""
    assert offload_offences(allowed) == []
    for bad in (
        "from aiotrade.quant import jobs\ndef f(x):\n    return jobs.probability_job(x)",
        "from aiotrade.quant import probability as qprob\ndef f(x):\n    return qprob.monte_carlo_outcome(x)",
        "from aiotrade.quant.risk import portfolio_risk\ndef f(x):\n    return portfolio_risk(x)",
        "from aiotrade.quant import allocation_hrp\ndef f(x):\n    return allocation_hrp.hrp_weights(x)",
        "from aiotrade.quant import allocation as qa\ndef f(x):\n    return qa.calculate_allocations(x, 'hrp')",
    ):
        assert offload_offences(bad), bad


# ----- shutdown ------------------------------------------------------------------------------------------


async def test_closing_the_app_cuts_off_a_running_job_with_a_503_problem_and_leaves_no_worker(
    tmp_path: Path,
) -> None:
    app_running = running_stack(tmp_path, compute=ComputeSettings(shutdown_grace_s=0.2))
    stack = await app_running.__aenter__()
    try:
        compute = stack.app.state.compute
        workers = compute.worker_pids()
        assert workers and all(alive(pid) for pid in workers)
        request = asyncio.create_task(stack.api.post(PROBABILITY, json=MAXIMUM))
        for _ in range(3000):
            if compute.stats().running:
                break
            await asyncio.sleep(0.01)
        assert compute.stats().running == 1
    finally:
        await app_running.__aexit__(None, None, None)  # the app's lifespan shuts down mid-job

    response = await request
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(":compute-interrupted")
    assert int(response.headers["Retry-After"]) >= 1
    assert not any(alive(pid) for pid in workers)


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Path]]:
    """`python -m aiotrade serve` with its embedded paper exchange, in a session of its own (a terminal's)."""
    port = free_port()
    env = {
        **os.environ,
        "AIOTRADE_DATA_DIR": str(tmp_path / "data"),
        "AIOTRADE_AUTH__BOOTSTRAP_KEY": TEST_API_KEY,
        "AIOTRADE_LOG_LEVEL": "WARNING",
        "AIOTRADE_EQUITY_INTERVAL_S": "3600",
    }
    stderr = tmp_path / "serve.err"
    with open(stderr, "wb") as err:  # noqa: ASYNC230 - a local file opened once per process start
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiotrade", "serve", "--port", str(port), env=env, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                assert proc.returncode is None, stderr.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url + "/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("serve not ready in 60 s:\n" + stderr.read_text()[-3000:])
        yield proc, url, stderr
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def descendants(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


async def gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if not any(alive(pid) for pid in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_ctrl_c_during_a_heavy_request_answers_it_prints_no_traceback_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path) as (proc, url, stderr):
        children = descendants(proc.pid)
        assert len(children) >= 2  # at least the compute workers (and the forkserver they come from)
        async with httpx.AsyncClient(base_url=url, headers=auth_headers(), timeout=60) as client:
            request = asyncio.create_task(client.post(PROBABILITY, json=MAXIMUM))
            await asyncio.sleep(1.0)  # the candles are fetched and the job is running
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
            response = await request
        await asyncio.wait_for(proc.wait(), 30)
    assert response.status_code in (200, 503), response.text
    if response.status_code == 503:
        assert response.headers["content-type"].startswith("application/problem+json")
    log = stderr.read_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    assert await gone(children), [pid for pid in children if alive(pid)]


async def test_sigkill_of_a_serve_process_leaves_no_worker_behind(tmp_path: Path) -> None:
    async with serve(tmp_path) as (proc, _, _):
        children = descendants(proc.pid)
        assert len(children) >= 2
        proc.kill()  # the server alone: its workers must not outlive it
        await proc.wait()
        assert await gone(children), [pid for pid in children if alive(pid)]
