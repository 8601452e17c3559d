"""The app as `serve` runs it, with or without its request context, for the logging section of the benchmarks.

``python -m bench.logging_app --port P [--bare]``. Both variants run the same uvicorn options as
``python -m aiotrade serve``; ``--bare`` leaves out the `RequestContext` middleware (request id, access line,
HTTP duration histogram), so the difference is what logging and metrics cost per request. The other metric
hooks on the ticker path (cache and upstream counters: a dict look-up and an add each) stay in both.
Never for anything but benchmarks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fastapi import FastAPI

from aiotrade.api.middleware import RequestContext
from aiotrade.app import create_app
from aiotrade.config import Settings


def observed() -> FastAPI:
    return create_app()


def bare() -> FastAPI:
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestContext]
    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from aiotrade.observability.logs import configure_logging, uvicorn_log_config

    parser = argparse.ArgumentParser(prog="python -m bench.logging_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bare", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        f"bench.logging_app:{'bare' if args.bare else 'observed'}",
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
