"""Who may use `/__paper/*`, the exchange's skewed clock as a client with an unsynchronised clock meets it, and
the settings that configure both from the environment."""

from __future__ import annotations

import socket

import aiohttp
import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.config import PaperConfig, PaperSettings
from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import ManualClock, make_binance, running

AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
OUTSIDE = "Timestamp for this request is outside of the recvWindow."


def non_loopback_address() -> str:
    """An address of this machine that is not loopback (the one it would route outwards from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel only picks a route
        except OSError:
            pytest.skip("no route off loopback on this machine")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback address")
    return address


# -- admin access ----------------------------------------------------------------------------------------------


async def test_admin_endpoints_refuse_a_non_loopback_peer_without_the_token_with_403(clock: ManualClock) -> None:
    address = non_loopback_address()
    config = PaperConfig(port=0, host="0.0.0.0", admin_token="s3cret")  # reachable off loopback
    async with PaperExchange(config, clock=clock) as paper, aiohttp.ClientSession() as session:
        remote = f"http://{address}:{paper.port}"
        async with session.get(remote + "/__paper/stats") as refused:
            assert refused.status == 403
            assert await refused.json() == {"code": -1002, "msg": "You are not authorized to execute this request."}
        async with session.post(remote + "/__paper/freeze", headers={"X-Paper-Admin-Token": "guess"}) as wrong:
            assert wrong.status == 403
        async with session.get(remote + "/__paper/stats", headers={"X-Paper-Admin-Token": "s3cret"}) as allowed:
            assert allowed.status == 200 and "requests_total" in await allowed.json()
        async with session.get(f"http://127.0.0.1:{paper.port}/__paper/stats") as local:
            assert local.status == 200  # loopback needs no token
        async with session.get(remote + "/api/v3/ping") as exchange:
            assert exchange.status == 200  # only the controls are guarded, not the exchange
    assert not paper.frozen  # the refused request changed nothing


async def test_without_a_configured_token_no_header_opens_the_admin_endpoints_off_loopback(clock: ManualClock) -> None:
    address = non_loopback_address()
    async with (
        PaperExchange(PaperConfig(port=0, host="0.0.0.0"), clock=clock) as paper,
        aiohttp.ClientSession() as session,
        session.get(f"http://{address}:{paper.port}/__paper/faults", headers={"X-Paper-Admin-Token": ""}) as refused,
    ):
        assert refused.status == 403


# -- the skewed clock ------------------------------------------------------------------------------------------


async def test_the_time_endpoint_and_server_times_follow_the_configured_offset(clock: ManualClock) -> None:
    async with running(clock, clock_offset_ms=-7_000) as (_, binance):
        assert await binance.fetch_time() == clock.now - 7_000
        info = await binance.publicGetExchangeInfo({"symbol": "BTCUSDT"})
    assert info["serverTime"] == clock.now - 7_000


@pytest.mark.parametrize(
    ("offset_ms", "refusal"),
    [
        (-1_000, AHEAD),  # the client's clock is a second ahead of the exchange's
        (-999, None),
        (10_001, OUTSIDE),  # the exchange is ahead by more than ccxt's recvWindow (10 s)
        (10_000, None),
    ],
)
async def test_a_client_with_an_unsynchronised_clock_gets_1021_exactly_as_from_binance(
    clock: ManualClock, offset_ms: int, refusal: str | None
) -> None:
    async with running(clock, clock_offset_ms=offset_ms) as (paper, binance):  # the client stamps clock.now
        if refusal is None:
            assert "balances" in (await binance.fetch_balance())["info"]
            return
        with pytest.raises(ccxt.InvalidNonce):  # what ccxt makes of -1021
            await binance.fetch_balance()
        assert binance.last_http_response == f'{{"code":-1021,"msg":"{refusal}"}}'
        assert paper.stats.statuses[400] == 1


async def test_the_clock_can_drift_mid_run_through_the_admin_endpoint(clock: ManualClock) -> None:
    async with running(clock) as (paper, binance), aiohttp.ClientSession() as admin:
        await binance.fetch_balance()
        async with admin.post(paper.url + "/__paper/clock", json={"offset_ms": -2_500}) as moved:
            assert await moved.json() == {"offset_ms": -2_500, "server_time": clock.now - 2_500}
        with pytest.raises(ccxt.InvalidNonce, match="1000ms ahead"):
            await binance.fetch_balance()
        assert await binance.fetch_time() == clock.now - 2_500
        # a client that measures the exchange's clock and stamps with it is served again
        difference = clock.now - await binance.fetch_time()
        binance.nonce = lambda: clock.now - difference
        assert "balances" in (await binance.fetch_balance())["info"]
        async with admin.post(paper.url + "/__paper/clock", json={"offset_ms": "soon"}) as invalid:
            assert (invalid.status, (await invalid.json())["code"]) == (400, -1130)
        paper.set_clock_offset(0)
        async with admin.get(paper.url + "/__paper/clock") as reset:
            assert (await reset.json())["offset_ms"] == 0


def test_the_new_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOTRADE_PAPER_PORT", "18765")
    monkeypatch.setenv("AIOTRADE_PAPER_CLOCK_OFFSET_MS", "-1500")
    monkeypatch.setenv("AIOTRADE_PAPER_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("AIOTRADE_PAPER_BAN_AFTER_429S", "3")
    monkeypatch.setenv(
        "AIOTRADE_PAPER_ACCOUNTS",
        '[{"api_key": "k", "secret": "s", "balances": {"USDT": "10"}, "enable_withdrawals": true}]',
    )
    config = PaperSettings().to_config()

    assert (config.port, config.clock_offset_ms, config.admin_token, config.ban_after_429s) == (
        18765,
        -1500,
        "from-env",
        3,
    )
    assert config.accounts[0].enable_withdrawals is True
    assert "from-env" not in repr(config)  # the token is kept out of logs
    with pytest.raises(ValueError, match="multiple"):
        PaperConfig(weight_window_ms=1_500)  # Binance names no such interval


# -- API key permissions ---------------------------------------------------------------------------------------


async def test_api_restrictions_answer_binances_shape_with_withdrawals_disabled_by_default(clock: ManualClock) -> None:
    async with running(clock) as (_, binance):
        restrictions = await binance.sapiGetAccountApiRestrictions()
        headers = binance.last_response_headers

    assert set(restrictions) >= {
        "ipRestrict", "createTime", "enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer",
        "enableVanillaOptions", "enableReading", "enableFutures", "enableMargin", "enableSpotAndMarginTrading",
    }  # fmt: skip
    assert (restrictions["enableWithdrawals"], restrictions["ipRestrict"], restrictions["enableReading"]) == (
        False,
        False,
        True,
    )
    assert restrictions["enableSpotAndMarginTrading"] is True
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"


async def test_a_key_configured_with_withdrawals_reports_them_enabled_and_ip_restricted(clock: ManualClock) -> None:
    account = {"api_key": "withdrawer", "secret": "w-secret", "balances": {"USDT": "1"}, "enable_withdrawals": True}
    async with running(clock, accounts=[account]) as (paper, _):
        withdrawer = make_binance(paper.url, apiKey="withdrawer", secret="w-secret")
        withdrawer.nonce = clock
        try:
            restrictions = await withdrawer.sapiGetAccountApiRestrictions()
            unsigned = make_binance(paper.url, apiKey="nobody", secret="x")
            with pytest.raises(ccxt.AuthenticationError, match="-2015"):
                await unsigned.sapiGetAccountApiRestrictions()
            await unsigned.close()
        finally:
            await withdrawer.close()
    assert (restrictions["enableWithdrawals"], restrictions["ipRestrict"]) == (True, True)
