"""The live dashboard in a real headless Chromium, against a real `python -m aiotrade serve` over the paper
exchange process: the page asks for the key, opens the stream with a ticket (never the key in a URL), shows
the account's equity from the stream, and an order placed through the API appears on it. A screenshot is
kept in the test's tmp dir."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.servers import Served, _unavailable, api_env, free_port, paper_env, serve_process
from tests.support.stack import TEST_API_KEY, auth_headers

# One server and one browser for the module: starting them is most of the cost.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp_path = tmp_path_factory.mktemp("dashboard")
    paper_port, api_port = free_port(), free_port()
    async with (
        serve_process("paper", ["paper"], paper_env(paper_port), port=paper_port, ready_path="/api/v3/ping",
                      log_dir=tmp_path) as paper,
        serve_process("api", ["serve", "--port", str(api_port)], api_env(paper.url, tmp_path / "api",
                      live_interval_s=0.2), port=api_port, ready_path="/readyz", log_dir=tmp_path) as api,
    ):  # fmt: skip
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("chromium is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


def shown(value: str | None) -> str:
    """A decimal string as the page shows it: exact, trailing zeros of the fraction trimmed."""
    if value is None:
        return "—"
    return value.rstrip("0").rstrip(".") if "." in value else value


@pytest.mark.timeout(120)
async def test_the_dashboard_shows_the_live_equity_and_an_order_placed_through_the_api(
    served: Served, page: Page, tmp_path: Path
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    async with httpx.AsyncClient(base_url=served.url, headers=auth_headers(), timeout=10) as api:
        await page.goto(served.url + "/dashboard")
        await page.fill("#api-key", TEST_API_KEY)
        await page.click("#login button[type=submit]")

        await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        await expect(page.locator("#login")).to_be_hidden()
        await expect(page.locator("#account-name")).to_have_text("account paper")
        before = (await api.get("/api/v1/portfolio/live/snapshot")).json()["snapshot"]
        assert Decimal(before["total_value"]) > 0
        await expect(page.locator("#total-value")).to_have_text(shown(before["total_value"]), timeout=10_000)
        await expect(page.locator("#trading-state")).to_have_text("trading ACTIVE")
        assert await page.locator("#risk-limits dt").count() > 3

        placed = await api.post(
            "/api/v1/accounts/paper/orders",
            json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"},
            headers={"Idempotency-Key": "dashboard-test-1"},
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        row = page.locator(f'#orders tbody tr[data-order-id="{order["id"]}"]')
        await expect(row).to_have_count(1, timeout=10_000)
        await expect(row).to_contain_text("BTC/USDT")
        await expect(page.locator("#events li").first).to_contain_text(re.compile(r"#\d+ (order|fill): BTC/USDT"))

        # The snapshot that follows the fill: the page shows the BTC the account holds now.
        after = (await api.get("/api/v1/portfolio/live/snapshot")).json()["snapshot"]
        btc = next(p for p in after["positions"] if p["asset"] == "BTC")
        assert Decimal(btc["quantity"]) != Decimal(
            next((p["quantity"] for p in before["positions"] if p["asset"] == "BTC"), "0")
        )
        btc_row = page.locator("#positions tbody tr", has_text=re.compile(r"^BTC"))
        await expect(btc_row.locator("td").nth(1)).to_have_text(shown(btc["quantity"]), timeout=10_000)

        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    assert sockets and all("ticket=wt_" in url and TEST_API_KEY not in url for url in sockets)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


async def test_the_page_and_its_files_are_open_and_keep_to_their_own_origin(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        page = await anonymous.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in re.sub(r'href="/|src="/', "", page.text.split("<body>")[0])  # nothing from elsewhere
        script = await anonymous.get("/dashboard/static/dashboard.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        cached = await anonymous.get(
            "/dashboard/static/dashboard.js", headers={"If-None-Match": script.headers["etag"]}
        )
        assert cached.status_code == 304
        assert (await anonymous.get("/dashboard/static/nothing.js")).status_code == 404
        assert (await anonymous.get("/api/v1/accounts/paper/orders")).status_code == 401
