"""The app as `serve` runs it, with or without its key check, for the auth section of the benchmarks.

``python -m bench.auth_app --port P [--bypass]``. Both variants run the same uvicorn options as
``python -m aiotrade serve``; ``--bypass`` swaps the authentication middleware for one that hands every
request a fixed principal (every scope, every account), so the difference is the key check alone: header
parse, SHA-256, cache look-up, inbound limiter (0: none), caller context. Never for anything but benchmarks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from aiotrade.api.auth import Authentication
from aiotrade.api.security import PRINCIPAL_STATE, Principal
from aiotrade.app import create_app
from aiotrade.config import ALL_ACCOUNTS, Settings
from aiotrade.models.keys import Scope as KeyScope

BYPASS_PRINCIPAL = Principal(
    key_id="000000000000", name="bypass", scopes=frozenset(KeyScope), accounts=frozenset({ALL_ACCOUNTS}), rate_limit=0
)


class Bypass:
    """Where Authentication was: the principal set, no key read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[PRINCIPAL_STATE] = BYPASS_PRINCIPAL
        await self.app(scope, receive, send)


def authenticated() -> FastAPI:
    return create_app()


def bypassed() -> FastAPI:
    app = create_app()
    app.user_middleware = [Middleware(Bypass) if m.cls is Authentication else m for m in app.user_middleware]
    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from aiotrade.observability.logs import configure_logging, uvicorn_log_config

    parser = argparse.ArgumentParser(prog="python -m bench.auth_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bypass", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        f"bench.auth_app:{'bypassed' if args.bypass else 'authenticated'}",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings.log_level, settings.log_format),
        access_log=False,
        ws_per_message_deflate=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
