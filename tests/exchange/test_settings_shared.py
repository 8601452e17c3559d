"""The settings of the shared parts: a bad Redis URL stops start-up naming the setting (and never echoes a
password), the cache and breaker bounds the issues promise, and the pool takes its sharing from the settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from aiotrade.config import BreakerConfig, CacheConfig, Settings
from aiotrade.exchange.pool import SharedLimitSettings
from tests.support.servers import ROOT


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/0", "redis://127.0.0.1:notaport/0", "127.0.0.1:6379"])
def test_a_bad_redis_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url=url)
    assert refused.value.errors()[0]["loc"] == ("redis_url",)


def test_serve_refuses_to_start_with_a_bad_redis_url_and_shows_no_password() -> None:
    env = {**os.environ, "AIOTRADE_REDIS_URL": "htps://:s3cret-pw@redis:6379/0"}
    done = subprocess.run(
        [sys.executable, "-m", "aiotrade", "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "redis_url" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout


def test_the_pool_shares_budgets_as_the_settings_say_and_the_url_stays_secret() -> None:
    settings = Settings(redis_url="redis://:pw@127.0.0.1:6379/0", redis_fallback_replicas=4, worker_count=3)
    shared = SharedLimitSettings.of(settings)
    assert shared.redis_url == "redis://:pw@127.0.0.1:6379/0" and shared.fallback_share == 12
    assert "pw" not in settings.model_dump_json()


def test_cache_ticker_ttl_and_breaker_bounds_are_what_the_issues_promise() -> None:
    assert CacheConfig().ticker_ttl_s <= 0.25 and CacheConfig().enabled
    assert BreakerConfig().failure_threshold <= 3 and BreakerConfig().reset_timeout_s <= 5
    assert BreakerConfig().read_deadline_s <= 3
    with pytest.raises(ValidationError):
        BreakerConfig(read_deadline_s=10)
