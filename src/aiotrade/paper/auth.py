"""API keys of the paper exchange and Binance's request signing, checked exactly as Binance Spot checks them.

Signing: `X-MBX-APIKEY` names the account; the HMAC-SHA256 (hex, with the account's secret) of the raw
query string followed by the raw form body, up to `&signature=`, must equal `signature`. Wrong signature
-1022, unknown key -2015 (HTTP 401), and a `timestamp` outside `recvWindow` -1021 — checked against the
exchange's own clock when the request is *executed*, so a request held in flight past its window is refused,
as Binance does, and a client whose clock runs ahead of the exchange's by a second or more is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl

from aiotrade.paper.errors import (
    BinanceError,
    bad_api_key_format,
    invalid_api_key,
    invalid_signature,
    mandatory,
    timestamp_ahead,
    timestamp_outside_window,
)
from aiotrade.paper.matching import MatchingEngine

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
CLOCK_AHEAD_TOLERANCE_MS = 1_000


@dataclass(frozen=True, slots=True)
class PaperAccount:
    api_key: str
    secret: str
    balances: Mapping[str, Decimal]
    enable_withdrawals: bool = False


class PrivateApi:
    """Accounts (keys, secrets, permissions) and the matching engine behind the signed endpoints."""

    def __init__(self, engine: MatchingEngine, accounts: list[PaperAccount], *, keys_created_ms: int) -> None:
        self.engine = engine
        self._keys_created_ms = keys_created_ms
        self._accounts: dict[str, PaperAccount] = {}
        for account in accounts:
            self.open_account(account)

    def open_account(self, account: PaperAccount) -> None:
        self._accounts[account.api_key] = account
        self.engine.open_account(account.api_key, dict(account.balances))

    def authenticate(
        self, api_key: str | None, query_string: str, raw_body: str, now_ms: int
    ) -> tuple[str, dict[str, str]]:
        """The account's key and the request's parameters (without timestamp and recvWindow), or the Binance
        error that refuses the request."""
        if not api_key:
            raise bad_api_key_format()
        account = self._accounts.get(api_key)
        if account is None:
            raise invalid_api_key()
        # Binance signs the query string and the body concatenated without a separator; the signature may end
        # either, and a parameter sent in both is read from the query string.
        query, query_signature = _split_signature(query_string)
        body, body_signature = _split_signature(raw_body)
        signature = body_signature or query_signature
        if signature is None:
            raise mandatory("signature")
        expected = hmac.new(account.secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
        # Binance: HMAC signatures are not case-sensitive
        if not hmac.compare_digest(expected, signature.lower()):
            raise invalid_signature()
        params = {**dict(parse_qsl(body, keep_blank_values=True)), **dict(parse_qsl(query, keep_blank_values=True))}
        _check_timestamp(params, now_ms)
        return api_key, {k: v for k, v in params.items() if k not in ("timestamp", "recvWindow")}

    def restrictions(self, api_key: str) -> dict[str, object]:
        """GET /sapi/v1/account/apiRestrictions: what the key may do (read and trade spot; withdraw if
        configured so, which Binance allows only to IP-restricted keys)."""
        withdrawals = self._accounts[api_key].enable_withdrawals
        return {
            "ipRestrict": withdrawals,
            "createTime": self._keys_created_ms,
            "enableReading": True,
            "enableWithdrawals": withdrawals,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": True,
            "enablePortfolioMarginTrading": False,
        }


def _split_signature(text: str) -> tuple[str, str | None]:
    """(what was signed, the signature) of a query string or form body; None when it carries no signature."""
    if text.startswith("signature="):
        return "", text.removeprefix("signature=")
    signed, marker, signature = text.rpartition("&signature=")
    return (signed, signature) if marker else (text, None)


def _check_timestamp(params: Mapping[str, str], now_ms: int) -> None:
    """Binance's timing security: refuse a timestamp a second or more ahead of the server, or older than
    recvWindow (5000 ms by default, at most 60000)."""
    try:
        timestamp = int(params["timestamp"])
    except (KeyError, ValueError):
        raise mandatory("timestamp") from None
    try:
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    if timestamp >= now_ms + CLOCK_AHEAD_TOLERANCE_MS:
        raise timestamp_ahead()
    if now_ms - timestamp > window:
        raise timestamp_outside_window()
