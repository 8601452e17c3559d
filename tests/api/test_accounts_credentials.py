"""Credential hygiene: a key that may withdraw is refused at start-up unless allowed; exchange secrets come
from files (AIOTRADE_..._FILE) and never show in logs, errors or answers.

Real stack: the paper exchange serves Binance's API-key restrictions endpoint and checks every signature.
"""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from uvicorn.lifespan.on import LifespanOn

from aiotrade.app import create_app
from aiotrade.config import PAPER_API_KEY, PAPER_SECRET, AccountConfig, Settings
from aiotrade.paper.config import PaperAccountConfig, PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.services.accounts import WithdrawalKeyRefused
from tests.observability.logcapture import captured_logs
from tests.support.stack import running_stack, stack_settings

BALANCES = {"USDT": Decimal(10_000), "BTC": Decimal(1)}
RESTRICTIONS = "/sapi/v1/account/apiRestrictions"


def paper_with(*accounts: PaperAccountConfig) -> PaperConfig:
    default = PaperAccountConfig(api_key=PAPER_API_KEY, secret=PAPER_SECRET, balances=BALANCES)
    return PaperConfig(port=0, seed=7, weight_limit=500_000, accounts=(default, *accounts))


async def test_a_key_that_may_withdraw_is_refused_at_start_up_unless_the_account_allows_it(tmp_path: Path) -> None:
    hot_secret = "hot-" + secrets.token_hex(16)
    hot = PaperAccountConfig(api_key="hot-key", secret=hot_secret, balances=BALANCES, enable_withdrawals=True)
    accounts = {
        "paper": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
        "hot": AccountConfig(venue="paper", api_key="hot-key", secret=hot_secret),
    }
    async with PaperExchange(paper_with(hot)) as paper:
        refused = stack_settings(paper.url, tmp_path, accounts=accounts)
        with pytest.raises(WithdrawalKeyRefused) as raised:
            async with LifespanManager(create_app(refused), startup_timeout=30):
                pytest.fail("started with a key that may withdraw")
        message = str(raised.value)
        assert "hot" in message and "AIOTRADE_ACCOUNTS__HOT__ALLOW_WITHDRAWALS" in message
        assert "paper" not in message.replace("ALLOW_WITHDRAWALS", "")  # only the offending account is named
        assert hot_secret not in message and "hot-key" not in message
        assert paper.stats.requests[RESTRICTIONS] == 2  # the venue was asked, for each account

        allowed = {**accounts, "hot": accounts["hot"].model_copy(update={"allow_withdrawals": True})}
        app = create_app(stack_settings(paper.url, tmp_path, accounts=allowed))
        async with LifespanManager(app, startup_timeout=30):
            assert app.state.gateway.venue_of("hot") == "paper"


async def test_exchange_secrets_come_from_files_and_never_show_in_logs_errors_or_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_key, secret = "filed-" + secrets.token_hex(12), "filed-secret-" + secrets.token_hex(16)
    (tmp_path / "api_key").write_text(api_key + "\n")
    (tmp_path / "secret").write_text(secret + "\n")
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__PAPER__VENUE", "paper")
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__PAPER__API_KEY_FILE", str(tmp_path / "api_key"))
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__PAPER__SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__WRONG__VENUE", "paper")
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__WRONG__API_KEY_FILE", str(tmp_path / "api_key"))
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__WRONG__SECRET", "not-the-secret")
    from_env = Settings()
    assert from_env.accounts["paper"].secret is not None
    assert from_env.accounts["paper"].secret.get_secret_value() == secret  # the file, its newline removed
    assert secret not in repr(from_env) and api_key not in repr(from_env)

    filed = PaperAccountConfig(api_key=api_key, secret=secret, balances=BALANCES)
    config = PaperConfig(port=0, seed=7, weight_limit=500_000, accounts=(filed,))
    answers: list[str] = []
    with captured_logs("DEBUG", "console") as logged:  # the app's own log pipeline, every logger at DEBUG
        async with running_stack(tmp_path / "data", paper_config=config, accounts=from_env.accounts) as stack:
            buy = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
            placed = await stack.api.post("/api/v1/accounts/paper/orders", json=buy)
            assert placed.status_code == 201, placed.text  # signed with the secret read from the file
            for response in (
                placed,
                await stack.api.get("/api/v1/accounts/paper/balances"),
                await stack.api.get("/api/v1/accounts/wrong/balances"),  # the venue refuses the signature
                await stack.api.post("/api/v1/accounts/wrong/orders", json=buy),
                await stack.api.get("/openapi.json"),
            ):
                answers.append(f"{response.status_code} {response.headers} {response.text}")
    assert any(a.startswith("4") or a.startswith("5") for a in answers[2:4])
    seen = "\n".join([*answers, logged.text])
    assert "/api/v3/account" in logged.text  # ccxt's debug lines of the signed requests are in the log
    assert "-1022" in seen  # the venue's refusal of the wrong secret was logged or answered
    assert secret not in seen and api_key not in seen


async def test_uvicorn_reports_the_refusal_as_its_message_without_a_traceback(tmp_path: Path) -> None:
    # What an operator sees from `python -m aiotrade serve`: uvicorn's lifespan, fed the app as serve feeds it.
    hot = PaperAccountConfig(api_key="hot-key", secret="hot-secret", balances=BALANCES, enable_withdrawals=True)
    accounts = {"hot": AccountConfig(venue="paper", api_key="hot-key", secret="hot-secret")}
    async with PaperExchange(paper_with(hot)) as paper:
        app = create_app(stack_settings(paper.url, tmp_path, accounts=accounts, default_account="hot"))
        lifespan = LifespanOn(uvicorn.Config(app, lifespan="on"))
        failures = _Messages()
        lifespan.logger.addHandler(failures)
        try:
            await lifespan.startup()
        finally:
            lifespan.logger.removeHandler(failures)
    assert lifespan.should_exit  # serve stops
    refusal, *_ = failures.messages
    assert refusal.startswith("aiotrade: refusing to start: the venue says the API key of account(s) hot")
    assert "Traceback" not in "\n".join(failures.messages)
    assert "hot-secret" not in "\n".join(failures.messages)


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
