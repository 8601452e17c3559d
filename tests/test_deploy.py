"""docker-compose.yml cannot run here (no Docker engine): check what it asks of our code instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aiotrade.__main__ import main
from aiotrade.config import Settings
from aiotrade.paper.config import PaperSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_api_service_environment_makes_valid_settings(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    api = compose["services"]["api"]
    for name, value in api["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert str(settings.venues["paper"].base_url).startswith("http://paper:")
    assert settings.effective_database_url().startswith("postgresql+asyncpg://")
    assert api["command"][:4] == ["python", "-m", "aiotrade", "serve"]
    assert api["deploy"]["replicas"] >= 2


def test_the_paper_service_environment_makes_valid_paper_settings(
    compose: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    paper = compose["services"]["paper"]
    for name, value in paper["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = PaperSettings()
    assert settings.host == "0.0.0.0" and settings.port == 8100
    assert paper["command"] == ["python", "-m", "aiotrade", "paper"]


def test_every_service_the_gateway_and_api_need_is_defined(compose: dict) -> None:
    services = compose["services"]
    assert set(services["api"]["depends_on"]) <= set(services)
    assert (ROOT / "deploy" / "nginx.conf").is_file()


def test_a_wrong_setting_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("AIOTRADE_ACCOUNTS__PAPER__VENUE", "nowhere")
    assert main(["config"]) == 2
    assert "accounts.paper.venue" in capsys.readouterr().err
    monkeypatch.delenv("AIOTRADE_ACCOUNTS__PAPER__VENUE")
    monkeypatch.setenv("AIOTRADE_VENUES__PAPER__EXCHANGE_CLASS", "notanexchange")
    assert main(["config"]) == 2
    assert "exchange_class" in capsys.readouterr().err


def test_config_prints_no_secrets(capsys: pytest.CaptureFixture) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "paper-secret" not in out and "**********" in out
