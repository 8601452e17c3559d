"""The interactive docs work on a machine without internet: a real headless Chromium, every request off
loopback refused, loads /docs and /redoc from a real `python -m aiotrade serve` and renders the operations.
The control: FastAPI's default page (assets from a CDN) renders nothing under the same block."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from fastapi.openapi.docs import get_swagger_ui_html
from playwright.async_api import Browser, BrowserContext, Route, async_playwright

from tests.support.servers import Served, _unavailable, free_port, serve_process

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# One server and one browser for the module: starting them is most of the cost.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp_path = tmp_path_factory.mktemp("docs")
    port = free_port()
    env = {"AIOTRADE_DATA_DIR": str(tmp_path / "data"), "AIOTRADE_LOG_LEVEL": "WARNING"}  # embedded paper venue
    async with serve_process("api", ["serve", "--port", str(port)], env, port=port, ready_path="/healthz",
                             log_dir=tmp_path) as api:  # fmt: skip
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("chromium is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def offline(browser: Browser, blocked: list[tuple[str, str]]) -> AsyncIterator[BrowserContext]:
    """A browser context in which every request off loopback fails (recorded in ``blocked``: type, URL)."""
    context = await browser.new_context()

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            await route.abort("internetdisconnected")

    await context.route("**/*", only_loopback)
    try:
        yield context
    finally:
        await context.close()


async def test_swagger_ui_renders_every_operation_with_no_network(served: Served, browser: Browser) -> None:
    # Swagger UI lists an operation once under each of its tags.
    listed = sum(
        len(op.get("tags") or ["default"]) for item in (await _openapi(served)).values() for op in item.values()
    )
    blocked: list[tuple[str, str]] = []
    async with offline(browser, blocked) as context:
        page = await context.new_page()
        await page.goto(served.url + "/docs")
        await page.locator(".opblock").first.wait_for(timeout=15_000)
        assert await page.locator(".opblock").count() == listed
        assert await page.get_by_text("create_order", exact=True).count() == 1  # displayOperationId
        assert await page.locator(".btn.authorize").count() == 1  # the bearer scheme is there to fill in
    assert blocked == []


async def test_redoc_renders_the_operations_with_no_network(served: Served, browser: Browser) -> None:
    blocked: list[tuple[str, str]] = []
    async with offline(browser, blocked) as context:
        page = await context.new_page()
        await page.goto(served.url + "/redoc")
        # The operation's heading in the main column (the side menu's copy is collapsed).
        await page.locator("h2", has_text="Place an order exactly once").wait_for(timeout=15_000)
    # ReDoc's "powered by" logo is an image on its CDN, with no option to turn it off: the only thing missing.
    assert [url for kind, url in blocked if kind != "image"] == []


async def test_control_a_page_that_loads_swagger_ui_from_a_cdn_renders_nothing(
    served: Served, browser: Browser
) -> None:
    cdn_page = get_swagger_ui_html(openapi_url="/openapi.json", title="FastAPI's default").body
    blocked: list[tuple[str, str]] = []
    async with offline(browser, blocked) as context:
        await context.route(
            served.url + "/cdn-docs", lambda route: route.fulfill(body=cdn_page, content_type="text/html")
        )
        page = await context.new_page()
        await page.goto(served.url + "/cdn-docs")
        await page.wait_for_load_state("load")
        assert await page.locator(".opblock").count() == 0
    assert {kind for kind, _ in blocked} >= {"script", "stylesheet"}


async def _openapi(served: Served) -> dict[str, dict[str, dict[str, list[str]]]]:
    async with httpx.AsyncClient() as client:
        return (await client.get(served.url + "/openapi.json")).json()["paths"]
