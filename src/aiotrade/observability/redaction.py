"""What must never be written to a log line, a traceback or a span: one function for text, one for values.

Covers what `aiotrade.exchange.errors.redact` covers (signatures, exchange API keys, secrets, passwords) and our
own credentials: API keys (``at_`` + at least 40 urlsafe characters), WebSocket tickets (``wt_`` + at least 30;
single-use, but a logged one must not be the one that opens a stream) and ``Authorization`` / ``Bearer`` values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiotrade.exchange.errors import redact as redact_exchange_secrets

REDACTED = "[REDACTED]"

# A cheap first look (lower() and substring tests are ~10x faster than one alternation regex): text without
# any of these cannot match a pattern below, and most log text has none.
# Every pattern below and every name in SECRET_KEYS contains one of them (a test says so).
_TRIGGERS = (
    "signature",
    "key",
    "secret",
    "password",
    "at_",
    "wt_",
    "ticket",
    "bearer",
    "authorization",
    "token",
    "passphrase",
)
_OUR_CREDENTIAL = re.compile(r"(?<![A-Za-z0-9_-])(?:at_[A-Za-z0-9_-]{40,}|wt_[A-Za-z0-9_-]{30,})")
_AUTHORIZATION = re.compile(
    r"(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+", re.IGNORECASE
)
_BEARER = re.compile(r"(\bbearer\s+)[^\s\"',;}]+", re.IGNORECASE)

# Values under these keys are secrets whatever they look like (keys compared lower-cased, "-" read as "_").
SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "x_api_key",
        "x_mbx_apikey",
        "secret",
        "api_secret",
        "password",
        "passphrase",
        "signature",
        "authorization",
        "token",
        "access_token",
        "ticket",
    }
)


def redact_text(text: str) -> str:
    """``text`` with every signature, credential and API key replaced by ``[REDACTED]``."""
    if not might_hold_secret(text):
        return text
    text = redact_exchange_secrets(text)
    text = _OUR_CREDENTIAL.sub(REDACTED, text)
    text = _AUTHORIZATION.sub(r"\1" + REDACTED, text)
    return _BEARER.sub(r"\1" + REDACTED, text)


def might_hold_secret(text: str) -> bool:
    """False when no pattern can match: the fast path for nearly all text."""
    lowered = text.lower()
    for trigger in _TRIGGERS:  # noqa: SIM110 -- any() over a generator costs twice as much, on every line
        if trigger in lowered:
            return True
    return False


_key_verdicts: dict[str, bool] = {}


def is_secret_key(key: object) -> bool:
    """Whether a value under ``key`` is a secret by its name alone (verdicts cached: log keys are few)."""
    if not isinstance(key, str):
        return False
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = key.lower().replace("-", "_") in SECRET_KEYS
        if len(_key_verdicts) < 4096:
            _key_verdicts[key] = verdict
    return verdict


def redact_value(value: Any) -> Any:
    """A copy of ``value`` safe to write: strings redacted, containers walked, secret-named entries blanked,
    other objects replaced by their redacted ``repr`` (numbers, booleans and None are kept as they are)."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(value.decode("utf-8", "replace"))
    return redact_text(repr(value))
