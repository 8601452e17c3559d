"""Pointing ccxt binance at the paper exchange."""

from __future__ import annotations

from types import SimpleNamespace

import ccxt.async_support as ccxt

from aiotrade.embedded_paper import start_embedded_paper
from aiotrade.paper.urls import CCXT_OPTIONS, binance_urls, ccxt_config
from tests.paper.conftest import make_binance


def test_every_binance_api_url_moves_to_the_paper_host_keeping_its_path() -> None:
    urls = binance_urls("http://127.0.0.1:8765/")
    real = ccxt.binance().describe()["urls"]["api"]  # no request, so no session to close

    assert set(urls) == set(real)
    assert urls["public"] == "http://127.0.0.1:8765/api/v3"
    assert urls["private"] == "http://127.0.0.1:8765/api/v3"
    assert urls["sapi"] == "http://127.0.0.1:8765/sapi/v1"
    assert urls["fapiPublic"] == "http://127.0.0.1:8765/fapi/v1"
    assert all(url.startswith("http://127.0.0.1:8765/") for url in urls.values())


def test_ccxt_config_merges_options_and_extras() -> None:
    config = ccxt_config("http://paper:1", timeout=500, options={"recvWindow": 5000})

    assert config["timeout"] == 500
    assert config["options"] == {**CCXT_OPTIONS, "recvWindow": 5000}
    assert config["urls"]["api"]["public"] == "http://paper:1/api/v3"


async def test_the_embedded_paper_exchange_serves_ccxt_at_the_url_it_yields() -> None:
    async with start_embedded_paper(SimpleNamespace(seed=7, latency_ms=0.0)) as url:
        client = make_binance(url)
        try:
            assert (await client.fetch_ticker("BTC/USDT"))["last"] > 0
        finally:
            await client.close()
