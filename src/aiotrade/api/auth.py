"""Who may call: API keys (``Authorization: Bearer at_...``), their cache, inbound rate limits, WebSocket tickets.

The promises:
- A key is ``at_`` + ``secrets.token_urlsafe(32)`` (256 random bits), shown once, stored as its SHA-256 digest
  in the shared database; its id (the digest's first 12 hex digits, not secret) names it in audit rows and logs.
- A verified key is cached at most ``auth.cache_ttl_s`` (≤ 5 s): a new key works at once (a key not in the
  cache is looked up, one query per key however many requests wait for it), a revoked one stops working on
  every replica within the TTL. Within it, checking a key costs one SHA-256 and a dict look-up.
- A well-formed key the store does not know (or knows as revoked) is remembered as such for the same TTL,
  in a bounded cache of its own (a flood of unknown keys neither queries per request nor evicts known keys).
  A key made through this process (`create_key` with its authenticator) is forgotten there at once; a key
  made elsewhere that someone tried here just before it existed works here within the TTL.
- An admin key grants and revokes only within its own power: the new (or revoked) key's accounts are among
  the caller's (``*`` only from a caller holding ``*``) and its scopes among the caller's, else 403 naming the
  field, never which accounts exist. The operator (``keys create``/``revoke`` on the CLI) has every power.
- Every request outside the open paths needs a valid key: 401 otherwise, before the body is read. A key over
  its rate limit gets 429 with ``Retry-After`` and ``RateLimit-*``; a limited key's answers carry ``RateLimit-*``.
  Scopes and accounts are then checked per route (`api/security.py`).
- The caller (request id kept, API key id set) is in `aiotrade.context` for the whole request: the store
  writes it on every audit row.
- A WebSocket handshake carries the header (programs) or a single-use ticket from ``POST /api/v1/auth/ws-ticket``
  (browsers), never the key in a URL; its ``Origin``, when present, must be its own or a configured one.
- Keys and tickets never appear in logs, errors, metrics or responses (but the one that made the key).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiotrade import errors as domain
from aiotrade.api.hosts import HostCheck, allowed_hosts, host_name
from aiotrade.api.problems import problem_response
from aiotrade.api.ratelimit import InboundLimiter, RateDecision, make_inbound_limiter
from aiotrade.api.security import PRINCIPAL_STATE, Principal, Requirement, check_account
from aiotrade.config import ALL_ACCOUNTS, API_KEY_PATTERN, Settings
from aiotrade.context import current_caller, reset_caller, set_caller
from aiotrade.models.keys import ApiKeyInfo, CreatedApiKey, NewApiKey, WsTicket
from aiotrade.models.keys import Scope as KeyScope
from aiotrade.store.api_keys import KEY_ID_LENGTH, ApiKeyStore, KeyNameTaken, NewKey, StoredKey, StoredTicket

log = logging.getLogger(__name__)

KEY_PREFIX = "at_"
TICKET_PREFIX = "wt_"
DEV_KEY_FILE = "dev-api-key"
DEV_KEY_NAME = "dev"
BOOTSTRAP_KEY_NAME = "bootstrap"
# Open without a key: liveness, readiness, the API's documentation, and the dashboard page (reserved).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/dashboard",)
_CACHE_LIMIT = 10_000


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in OPEN_PREFIXES)


# ----- keys --------------------------------------------------------------------------------------------------


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(digest: str) -> str:
    return digest[:KEY_ID_LENGTH]


def info(key: StoredKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=key.key_id, name=key.name, scopes=[KeyScope(s) for s in key.scopes], accounts=list(key.accounts),
        rate_limit=key.rate_limit, created_at=key.created_at, created_by=key.created_by, revoked_at=key.revoked_at,
        active=key.active,
    )  # fmt: skip


async def create_key(
    store: ApiKeyStore,
    settings: Settings,
    request: NewApiKey,
    *,
    created_by: str,
    granted_by: Principal | None = None,
    authenticator: Authenticator | None = None,
) -> CreatedApiKey:
    """Make a key on configured accounts (or ``*``); 403 when it would exceed ``granted_by``'s own accounts or
    scopes (None: the operator, who may grant anything), 422 for an unknown account, 409 for a name in use.
    The key works at once through ``authenticator`` (this process's), even if it was tried before it existed."""
    rate = settings.auth.default_rate_limit if request.rate_limit is None else request.rate_limit
    if granted_by is not None:
        check_within_power(granted_by, request.scopes, request.accounts, action="grant", rate_limit=rate)
    # After the power check: a caller limited to some accounts learns nothing about the others.
    unknown = [a for a in request.accounts if a != ALL_ACCOUNTS and a not in settings.accounts]
    if unknown:
        raise domain.InvalidInput.param("accounts", f"not configured: {', '.join(unknown)}")
    secret = new_key()
    digest = digest_of(secret)
    try:
        stored = await store.add(
            NewKey(key_id_of(digest), digest, request.name, [s.value for s in request.scopes], request.accounts,
                   rate, created_by)
        )  # fmt: skip
    except KeyNameTaken:
        raise domain.Conflict(f"an active API key is already named {request.name!r}; revoke it first") from None
    if authenticator is not None:
        authenticator.forget(digest)
    log.info("API key %s (%s) created by %s", stored.key_id, stored.name, created_by)
    return CreatedApiKey(**info(stored).model_dump(), key=secret)


async def revoke_key(store: ApiKeyStore, name: str, *, revoked_by: Principal | None = None) -> ApiKeyInfo:
    """Revoke the active key of this name; 404 when there is none, 403 when its accounts or scopes exceed
    ``revoked_by``'s own (None: the operator): a limited admin may not cut off a wider key, the operator's."""
    if revoked_by is not None:
        target = next((k for k in await store.list() if k.name == name and k.active), None)
        if target is None:
            raise domain.NotFound(f"no active API key is named {name!r}")
        check_within_power(revoked_by, [KeyScope(s) for s in target.scopes], target.accounts, action="revoke")
    # By id too when the caller was checked: a same-named key made in between is not the one judged.
    revoked = await store.revoke(name, key_id=target.key_id if revoked_by is not None else None)
    if revoked is None:
        raise domain.NotFound(f"no active API key is named {name!r}")
    log.info("API key %s (%s) revoked", revoked.key_id, revoked.name)
    return info(revoked)


def check_within_power(
    caller: Principal,
    scopes: Collection[KeyScope],
    accounts: Collection[str],
    *,
    action: str,
    rate_limit: float | None = None,
) -> None:
    """403 unless every scope is the caller's and every account is the caller's (``*`` only for a caller
    with ``*``, who may name any account), and, given ``rate_limit``, it is no more than the caller's own
    (0 is unlimited: only for an unlimited caller). The refusal names the field, never an account."""
    beyond = _beyond_power(caller, scopes, accounts, action=action, rate_limit=rate_limit)
    if beyond is not None:
        raise domain.Forbidden(f"{beyond.name}: {beyond.reason}", invalid_params=[beyond])


def within_power(caller: Principal, key: StoredKey) -> bool:
    """Whether ``key`` is one ``caller`` could have granted (what a limited admin may see and revoke)."""
    return _beyond_power(caller, [KeyScope(s) for s in key.scopes], key.accounts, action="see") is None


def _beyond_power(
    caller: Principal,
    scopes: Collection[KeyScope],
    accounts: Collection[str],
    *,
    action: str,
    rate_limit: float | None = None,
) -> domain.InvalidParam | None:
    """The first field in which a key would exceed ``caller``'s own power, or None."""
    if ALL_ACCOUNTS not in caller.accounts and any(a == ALL_ACCOUNTS or a not in caller.accounts for a in accounts):
        return domain.InvalidParam("accounts", f"this API key may {action} only accounts it holds itself")
    beyond = sorted(s.value for s in scopes if s not in caller.scopes)
    if beyond:
        reason = f"this API key may {action} only scopes it holds itself (not {', '.join(beyond)})"
        return domain.InvalidParam("scopes", reason)
    if rate_limit is not None and caller.rate_limit > 0 and not 0 < rate_limit <= caller.rate_limit:
        reason = f"this API key may {action} at most its own rate limit ({caller.rate_limit:g} per second)"
        return domain.InvalidParam("rate_limit", reason)
    return None


async def list_keys(store: ApiKeyStore, *, seen_by: Principal | None = None) -> list[ApiKeyInfo]:
    """Every key (the operator), or those within ``seen_by``'s own power: a limited admin learns nothing
    of keys, or accounts, beyond its own."""
    return [info(k) for k in await store.list() if seen_by is None or within_power(seen_by, k)]


async def ensure_bootstrap_key(store: ApiKeyStore, settings: Settings) -> None:
    """Insert the configured bootstrap key (idempotently, by digest); it replaces an older bootstrap key."""
    secret = settings.auth.bootstrap_key
    if secret is None:
        return
    digest = digest_of(secret.get_secret_value())
    auth = settings.auth
    inserted = await store.ensure(
        NewKey(key_id_of(digest), digest, BOOTSTRAP_KEY_NAME, auth.bootstrap_scopes, auth.bootstrap_accounts,
               auth.bootstrap_rate_limit, "bootstrap")
    )  # fmt: skip
    if inserted:
        log.info("bootstrap API key %s stored", key_id_of(digest))


async def ensure_dev_key(store: ApiKeyStore, settings: Settings) -> Path:
    """The local key in data_dir/dev-api-key (mode 0600): kept when the store still knows it and it is active,
    else made anew (every scope, every account, no rate limit) and written before the server answers."""
    path = settings.data_dir / DEV_KEY_FILE
    with contextlib.suppress(OSError):
        secret = path.read_text().strip()
        if API_KEY_PATTERN.fullmatch(secret):
            known = await store.by_digest(digest_of(secret))
            if known is not None and known.active:
                _restrict(path)
                return path
    secret = new_key()
    digest = digest_of(secret)
    await store.add(
        NewKey(key_id_of(digest), digest, DEV_KEY_NAME, [s.value for s in KeyScope], [ALL_ACCOUNTS], 0, "dev"),
        replace_active=True,
    )
    _write_private(path, secret + "\n")
    log.info("local API key %s written to %s", key_id_of(digest), path)
    return path


def _restrict(path: Path) -> None:
    os.chmod(path, 0o600)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with a file holding ``text`` that was never readable by others: a 0600 file of its
    own in the same directory, renamed over it (an existing file, whatever its mode or links, never holds
    the new text). Synchronous like the rest of start-up's file work: one tiny file, once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# ----- verification and its cache ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    until: float


class Authenticator:
    """Verifies keys against the store, caching verified ones and unknown ones for ``ttl_s`` (see the module
    docstring); at most ``cache_limit`` of each."""

    def __init__(
        self,
        store: ApiKeyStore,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        cache_limit: int = _CACHE_LIMIT,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._limit = cache_limit
        self._cache: dict[str, _Cached] = {}
        # slot -> until, in insertion order, which is expiry order (one TTL for all): oldest first.
        self._unknown: dict[str, float] = {}
        self._loading: dict[str, asyncio.Task[Principal | None]] = {}
        self._forgets = 0  # a load that saw a forget() while in flight does not remember its "unknown"
        self.lookups = 0  # store queries made (for tests and benchmarks)

    async def verify(self, secret: str) -> Principal | None:
        """The key's principal, or None for anything that is not an active key of ours."""
        if not API_KEY_PATTERN.fullmatch(secret):
            return None
        digest = digest_of(secret)
        return await self._cached(digest, lambda: self.store.by_digest(digest))

    async def active(self, key_id: str) -> Principal | None:
        """The principal of an active key by its id (a ticket's key, checked again when the ticket is used)."""
        return await self._cached("id:" + key_id, lambda: self.store.by_id(key_id))

    def forget(self, digest: str) -> None:
        """Drop what this process remembers of the key with this digest: a key just made works here at once,
        even if it was tried (and found unknown) before it existed."""
        self._forgets += 1
        self._unknown.pop(digest, None)
        self._cache.pop(digest, None)
        self._loading.pop(digest, None)  # a query in flight may predate the key: later callers ask again

    async def _cached(self, slot: str, load: Callable[[], Awaitable[StoredKey | None]]) -> Principal | None:
        now = self._clock()
        hit = self._cache.get(slot)
        if hit is not None and hit.until > now:
            return hit.principal
        if self._unknown.get(slot, 0.0) > now:
            return None
        task = self._loading.get(slot)
        if task is None:  # one query per key, however many requests wait for it
            task = asyncio.ensure_future(self._load(slot, load))
            self._loading[slot] = task
            task.add_done_callback(lambda done: self._loading.pop(slot) if self._loading.get(slot) is done else None)
        return await asyncio.shield(task)

    async def _load(self, slot: str, load: Callable[[], Awaitable[StoredKey | None]]) -> Principal | None:
        self.lookups += 1
        forgets = self._forgets
        stored = await load()
        if stored is None or not stored.active:  # revoked is for ever, like unknown until made
            self._cache.pop(slot, None)
            if forgets == self._forgets:
                self._remember_unknown(slot)
            return None
        principal = principal_of(stored)
        if len(self._cache) >= self._limit:
            self._sweep()
        self._cache[slot] = _Cached(principal, self._clock() + self.ttl_s)
        return principal

    def _sweep(self) -> None:
        now = self._clock()
        for slot in [s for s, c in self._cache.items() if c.until <= now] or list(self._cache)[: self._limit // 10]:
            del self._cache[slot]

    def _remember_unknown(self, slot: str) -> None:
        now = self._clock()
        self._unknown.pop(slot, None)  # re-inserted at the end: the order stays the expiry order
        while self._unknown and (len(self._unknown) >= self._limit or next(iter(self._unknown.values())) <= now):
            del self._unknown[next(iter(self._unknown))]  # the expired, then the oldest: O(1) each
        self._unknown[slot] = now + self.ttl_s


def principal_of(key: StoredKey) -> Principal:
    return Principal(
        key_id=key.key_id,
        name=key.name,
        scopes=frozenset(KeyScope(s) for s in key.scopes),
        accounts=frozenset(key.accounts),
        rate_limit=key.rate_limit,
    )


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# ----- the HTTP middleware -----------------------------------------------------------------------------------


class Authentication:
    """Pure ASGI middleware: the key (401), the key's rate (429), the caller's context, the principal on the
    request. WebSocket handshakes pass through: the live-stream route checks them (it accepts first, so that a
    refusal is a close code and reason a browser can read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        authenticator: Authenticator | None = getattr(state, "authenticator", None)
        if authenticator is None:  # the lifespan has not opened the key store: refuse rather than guess
            await self._refuse(scope, receive, send, domain.UpstreamUnavailable("the server is starting"))
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        token = bearer_token(header)
        principal = await authenticator.verify(token) if token is not None else None
        if principal is None:
            error = (
                domain.Unauthorized("an API key is required: send Authorization: Bearer <key>")
                if token is None
                else domain.Unauthorized("the API key is not valid (unknown or revoked)", invalid_token=True)
            )
            await self._refuse(scope, receive, send, error)
            return
        decision = await take(state.inbound_limiter, principal)
        if decision is not None and not decision.allowed:
            error = domain.TooManyRequests(
                f"this API key may send {principal.rate_limit:g} requests per second",
                retry_after_s=decision.retry_after_s,
                headers=decision.headers(),
            )
            await self._refuse(scope, receive, send, error)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        token_ = set_caller(dataclasses.replace(current_caller(), api_key_id=principal.key_id))
        try:
            if decision is None:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, _with_headers(send, decision))
        finally:
            reset_caller(token_)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: domain.DomainError) -> None:
        headers = dict(getattr(error, "headers", None) or {})
        if error.retry_after_s is not None:
            headers.setdefault("Retry-After", str(max(1, math.ceil(error.retry_after_s))))
        response = problem_response(
            Request(scope),
            status=error.status,
            slug=error.slug,
            title=error.title,
            detail=error.detail,
            headers=headers,
        )
        await response(scope, receive, send)


async def take(limiter: InboundLimiter, principal: Principal) -> RateDecision | None:
    """Count one request against the key's rate; None for an unlimited key."""
    if principal.rate_limit <= 0:
        return None
    return await limiter.take(principal.key_id, principal.rate_limit)


def _with_headers(send: Send, decision: RateDecision) -> Send:
    extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return sending


# ----- WebSocket: tickets, origins, the stream's access ------------------------------------------------------


async def issue_ticket(connection: HTTPConnection, principal: Principal) -> WsTicket:
    """A single-use ticket for one live-stream handshake, carrying the key's id, scopes and accounts."""
    settings: Settings = connection.app.state.settings
    ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
    ttl = settings.auth.ticket_ttl_s
    await connection.app.state.api_keys.add_ticket(
        digest_of(ticket),
        StoredTicket(principal.key_id, tuple(sorted(principal.scopes)), tuple(sorted(principal.accounts))),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
    )
    return WsTicket(ticket=ticket, expires_in_s=ttl)


@dataclass(frozen=True, slots=True)
class StreamAccess:
    """The live stream's verdict on a handshake: a principal, or the close code and reason of a refusal."""

    principal: Principal | None
    close: tuple[int, str] | None = None


CLOSE_POLICY = 1008  # the hub's code for refusals (policy violation)
CLOSE_TRY_LATER = 1013


async def stream_access(connection: HTTPConnection) -> StreamAccess:
    """Origin, credentials (header or ticket), scope ``read``, rate, and the account asked for (``?account=``)."""
    state = connection.app.state
    settings: Settings = state.settings
    origin = connection.headers.get("origin")
    ticket = connection.query_params.get("ticket")
    if origin is not None and not origin_allowed(origin, connection.headers.get("host"), settings.http.cors_origins):
        await spend_ticket(connection)
        return StreamAccess(None, (CLOSE_POLICY, "origin not allowed"))
    authenticator: Authenticator = state.authenticator
    token = bearer_token(connection.headers.get("authorization"))
    if token is not None:
        principal = await authenticator.verify(token)
    elif ticket:
        principal = await redeem_ticket(state.api_keys, authenticator, ticket)
    else:
        return StreamAccess(None, (CLOSE_POLICY, "unauthorized: send Authorization: Bearer <key> or ?ticket="))
    if principal is None:
        return StreamAccess(None, (CLOSE_POLICY, "unauthorized: the key or ticket is not valid"))
    decision = await take(state.inbound_limiter, principal)
    if decision is not None and not decision.allowed:
        return StreamAccess(None, (CLOSE_TRY_LATER, "too many requests for this API key"))
    if KeyScope.READ not in principal.scopes:
        return StreamAccess(None, (CLOSE_POLICY, "forbidden: this API key lacks the 'read' scope"))
    account = connection.query_params.get("account") or settings.default_account
    try:
        check_account(principal, account)
    except domain.Forbidden:
        return StreamAccess(None, (CLOSE_POLICY, "forbidden: this API key may not act on this account"))
    # The connection runs in a task of its own: the caller stays set for this stream only.
    set_caller(dataclasses.replace(current_caller(), api_key_id=principal.key_id))
    return StreamAccess(principal)


stream_access.requirement = Requirement(KeyScope.READ, "query")  # type: ignore[attr-defined]


async def redeem_ticket(store: ApiKeyStore, authenticator: Authenticator, ticket: str) -> Principal | None:
    """The ticket's principal, once: it is gone afterwards on every replica; its key must still be active."""
    if not _is_ticket(ticket):
        return None
    taken = await store.take_ticket(digest_of(ticket))
    if taken is None:
        return None
    key = await authenticator.active(taken.key_id)
    if key is None:
        return None
    return dataclasses.replace(
        key, scopes=frozenset(KeyScope(s) for s in taken.scopes), accounts=frozenset(taken.accounts)
    )


async def spend_ticket(connection: HTTPConnection) -> None:
    """Spend the ticket of a refused handshake, if it has one: uvicorn logs a handshake's URL (at INFO), and
    no URL it logs may still open a stream."""
    ticket = connection.query_params.get("ticket")
    if ticket and _is_ticket(ticket):
        await connection.app.state.api_keys.take_ticket(digest_of(ticket))


async def _spend_refused_ticket(scope: Scope) -> None:
    if "app" in scope and hasattr(scope["app"].state, "api_keys"):
        await spend_ticket(HTTPConnection(scope))


def _is_ticket(value: str) -> bool:
    return value.startswith(TICKET_PREFIX) and len(value) <= 64


def origin_allowed(origin: str, host: str | None, configured: Collection[str]) -> bool:
    """The handshake's own origin (same host and port as its Host header), or a configured one (``*``: any)."""
    if "*" in configured or origin in configured:
        return True
    if host is None:
        return False
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    origin_host = rest.split("/", 1)[0].lower()
    return origin_host == host.strip().lower() or (
        host_name(origin_host) == host_name(host) and _default_port(origin_host, scheme) == _default_port(host, scheme)
    )


def _default_port(host: str, scheme: str) -> str:
    name = host_name(host)
    port = host[len(name) :].lstrip(":")
    return port or ("443" if scheme.lower() == "https" else "80")


# ----- wiring ------------------------------------------------------------------------------------------------


async def open_auth(app: FastAPI, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
    """The key store, its cache and the inbound limiter on ``app.state``; the bootstrap key stored. The
    limiter counts through the app's Redis (``app.state.redis``, set when AIOTRADE_REDIS_URL is) when there
    is one, else in this process."""
    store = ApiKeyStore(sessions)
    await ensure_bootstrap_key(store, settings)
    app.state.api_keys = store
    app.state.authenticator = Authenticator(store, ttl_s=settings.auth.cache_ttl_s)
    app.state.inbound_limiter = make_inbound_limiter(getattr(app.state, "redis", None))


def install_guards(app: FastAPI, settings: Settings) -> None:
    """Host check (outermost of the three), CORS when origins are configured, then API keys."""
    app.add_middleware(Authentication)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.http.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                "Idempotent-Replayed", "Retry-After", "X-Request-ID",
                "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
            ],
        )  # fmt: skip
    app.add_middleware(HostCheck, allowed=allowed_hosts(settings), on_refused_websocket=_spend_refused_ticket)
