"""Client order ids and idempotency keys: what every replica derives the same way, before any I/O."""

from __future__ import annotations

import hashlib
import secrets

from aiotrade import errors as domain
from aiotrade.models.orders import CreateOcoRequest, CreateOrderRequest

CLIENT_ID_PREFIX = "at"  # 2 + 30 characters: within Binance's 36 and its [.A-Z:/a-z0-9_-] alphabet
MAX_IDEMPOTENCY_KEY = 255


def client_id_for_key(account: str, key: str) -> str:
    """The same key on the same account gives the same client id, on every replica."""
    digest = hashlib.sha256(f"{account}\x00{key}".encode()).hexdigest()
    return CLIENT_ID_PREFIX + digest[:30]


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(15)


def request_fingerprint(account: str, request: CreateOrderRequest | CreateOcoRequest) -> str:
    canonical = request.model_dump_json(exclude_none=True)
    return hashlib.sha256(f"{account}\x00{canonical}".encode()).hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise domain.InvalidInput(
            "Idempotency-Key must be 1 to 255 printable characters",
            invalid_params=[domain.InvalidParam("Idempotency-Key", "1 to 255 printable characters")],
        )
