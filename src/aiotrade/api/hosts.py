"""Refuse a foreign ``Host`` (DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not trade).

The allow-list defaults to the loopback names (``localhost``, ``127.0.0.1``, ``[::1]``, any port) and the
configured ``host``; ``*`` allows any Host, ``.example.com`` example.com and its subdomains. HTTP gets a 400
problem+json; a WebSocket handshake is closed before it is accepted (HTTP 403; a hook spends its ticket).
Liveness and readiness are exempt: orchestrators probe them by IP address, and they tell nothing worth
rebinding for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from aiotrade.api.problems import problem_response
from aiotrade.config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
_WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})


def allowed_hosts(settings: Settings) -> list[str]:
    """The configured list, or the loopback names and the configured host."""
    if settings.http.allowed_hosts is not None:
        return list(settings.http.allowed_hosts)
    names = list(LOOPBACK_NAMES)
    host = settings.host.strip().lower()
    if host not in _WILDCARD_ADDRESSES:
        names.append(_bracketed(host))
    return names


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the port to this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The Host header without its port, lower-cased (IPv6 literals keep their brackets)."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostPolicy:
    def __init__(self, allowed: Iterable[str]) -> None:
        entries = {_bracketed(a.strip().lower()) for a in allowed if a.strip()}
        self.any = "*" in entries
        self._exact = frozenset(e for e in entries if not e.startswith("."))
        self._suffixes = tuple(e for e in entries if e.startswith("."))

    def allows(self, header: str | None) -> bool:
        if self.any:
            return True
        if not header:
            return False
        name = host_name(header)
        return name in self._exact or any(name == s[1:] or name.endswith(s) for s in self._suffixes)


class HostCheck:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed: Iterable[str],
        on_refused_websocket: Callable[[Scope], Awaitable[None]] | None = None,
    ) -> None:
        """``on_refused_websocket``: called with a refused handshake's scope before it is closed."""
        self.app = app
        self.policy = HostPolicy(allowed)
        self.on_refused_websocket = on_refused_websocket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self.policy.any or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            if self.on_refused_websocket is not None:
                await self.on_refused_websocket(scope)
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        response = problem_response(
            Request(scope),
            status=400,
            slug="host-not-allowed",
            title="Host not allowed",
            detail="this server does not answer for the Host header sent; see AIOTRADE_HTTP__ALLOWED_HOSTS",
        )
        await response(scope, receive, send)


def _bracketed(host: str) -> str:
    """IPv6 literals as they appear in a Host header: ``::1`` -> ``[::1]``."""
    if host.startswith("[") or ":" not in host:
        return host
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return host
    return f"[{host}]"
