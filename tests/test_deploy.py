"""docker-compose.yml cannot run here (no Docker engine): check what it asks of our code instead."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
import yaml

from aiotrade.__main__ import main
from aiotrade.api.auth import new_key
from aiotrade.config import Settings
from aiotrade.paper.config import PaperSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if environ.get(name):
            return environ[name]
        if op == ":?":
            raise AssertionError(f"{name} must be set: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_the_api_service_environment_makes_valid_settings(
    compose: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What an operator exports (the two secrets), through compose's secrets, makes valid settings."""
    environ = {"AIOTRADE_PG_PASSWORD": "pg-" + secrets.token_hex(8), "AIOTRADE_BOOTSTRAP_KEY": new_key()}
    api = compose["services"]["api"]
    mounted = {}
    for name in api["secrets"]:
        source = compose["secrets"][name]["environment"]  # secrets come from the operator's environment
        mounted[f"/run/secrets/{name}"] = tmp_path / name
        (tmp_path / name).write_text(environ[source] + "\n")
    for name, value in api["environment"].items():
        value = interpolate(str(value), environ)
        monkeypatch.setenv(name, str(mounted.get(value, value)))
    settings = Settings()
    assert str(settings.venues["paper"].base_url).startswith("http://paper:")
    url = settings.effective_database_url()
    assert url.startswith("postgresql+asyncpg://aiotrade:") and environ["AIOTRADE_PG_PASSWORD"] in url
    assert settings.auth.bootstrap_key is not None
    assert settings.auth.bootstrap_key.get_secret_value() == environ["AIOTRADE_BOOTSTRAP_KEY"]
    assert settings.redis_url is not None and "redis:6379" in settings.redis_url.get_secret_value()
    assert settings.http.allowed_hosts and "localhost" in settings.http.allowed_hosts
    assert api["command"][:4] == ["python", "-m", "aiotrade", "serve"]
    assert api["deploy"]["replicas"] >= 2
    postgres = compose["services"]["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in postgres and postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"


def test_only_the_gateway_is_published_and_on_loopback_by_default(compose: dict) -> None:
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"gateway"}
    (port,) = services["gateway"]["ports"]
    assert interpolate(port, {}).startswith("127.0.0.1:")


def test_scaling_the_api_needs_no_edit(compose: dict) -> None:
    """`docker compose up --scale api=4`: no fixed name or host port on the replicas, the gateway re-resolves
    them, and it forwards Host, Upgrade and X-Request-ID on every route (a location that set any header of
    its own would silently drop the server's: nginx does not merge proxy_set_header)."""
    api = compose["services"]["api"]
    assert "container_name" not in api and "ports" not in api
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server api:8000 resolve;", conf) and "resolver 127.0.0.11" in conf
    server = conf[conf.index("server {") :]
    header_block = server[: server.index("location")]
    for header in ("Host", "Upgrade", "Connection", "X-Request-ID"):
        assert f"proxy_set_header {header} " in header_block, header
    for location in re.findall(r"location [^{]+\{([^}]*)\}", server):
        assert "proxy_set_header" not in location


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
