"""Idempotency keys scoped by caller: two API keys sending the same ``Idempotency-Key`` never share an order.

The header a caller sends is stored as ``<key id>:<header>`` (hashed past the column when long), so the client
order id derived from it (`client_id_for_key(account, stored key)`) differs per caller. Keys stored before this
scoping keep working: a header that is stored for the account as given — and is not another caller's scoped
key — resumes and replays as before, with the same client order id. Rebalance headers name a plan (its id
is echoed in the answer): one's own scoped plan id and a plan id derived from the plan itself are taken as
they are.
"""

from __future__ import annotations

import hashlib

from aiotrade.api.security import Principal
from aiotrade.services.orders.keys import MAX_IDEMPOTENCY_KEY, check_key
from aiotrade.store.api_keys import ApiKeyStore

MAX_PLAN_ID = 64  # rebalances.plan_id
_REBALANCE_PREFIX = "rebalance:"  # the per-trade keys a rebalance derives from its plan id


async def order_key(store: ApiKeyStore, principal: Principal, account: str, header: str | None) -> str | None:
    """The stored idempotency key for an order request from ``principal`` (None without a header)."""
    if header is None:
        return None
    check_key(header)
    if not header.startswith(_REBALANCE_PREFIX) and await store.unscoped_idempotency_key(account, header):
        return header  # stored before keys were scoped by caller: same key, same client order id
    return scoped(principal.key_id, header, MAX_IDEMPOTENCY_KEY)


async def plan_key(store: ApiKeyStore, principal: Principal, account: str, header: str | None) -> str | None:
    """The plan id a rebalance header names for ``principal`` (None without a header: derived from the plan)."""
    if header is None:
        return None
    check_key(header)
    if header.startswith(principal.key_id + ":") or await store.unscoped_plan(account, header):
        return header
    return scoped(principal.key_id, header, MAX_PLAN_ID)


def scoped(key_id: str, header: str, limit: int) -> str:
    """``<key id>:<header>``, or ``<key id>:~<digest of header>`` when that would pass ``limit``."""
    plain = f"{key_id}:{header}"
    if len(plain) <= limit:
        return plain
    return f"{key_id}:~" + hashlib.sha256(header.encode()).hexdigest()[: limit - len(key_id) - 2]
