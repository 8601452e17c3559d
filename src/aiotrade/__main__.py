"""Command line: ``python -m aiotrade serve | paper | config``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiotrade", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (embeds the paper exchange by default)")
    serve.add_argument("--host", help="default: AIOTRADE_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: AIOTRADE_PORT or 8000")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    commands.add_parser("paper", help="serve the paper exchange (settings: AIOTRADE_PAPER_*)")
    commands.add_parser("config", help="print the effective settings (secrets masked) and exit")
    commands.add_parser("migrate", help="bring the database schema up to date and exit (serve does it too)")
    args = parser.parse_args(argv)

    from aiotrade.config import Settings

    try:
        settings = Settings()
    except (ValidationError, ValueError, FileNotFoundError) as exc:
        print(f"aiotrade: invalid settings:\n{_describe(exc)}", file=sys.stderr)
        return 2
    from aiotrade.observability.logs import configure_logging, uvicorn_log_config

    # Every logger, uvicorn's included, through one formatter that redacts secrets; logs go to stderr.
    configure_logging(settings.log_level, settings.log_format)

    if args.command == "config":
        print(settings.model_dump_json(indent=2))
        return 0
    if args.command == "migrate":
        from aiotrade.store.db import make_engine, migrate

        async def run_migrations() -> None:
            engine = make_engine(settings.effective_database_url())
            try:
                await migrate(engine)
            finally:
                await engine.dispose()

        asyncio.run(run_migrations())
        print("database schema is up to date")
        return 0
    if args.command == "paper":
        from aiotrade.paper.server import PaperSettings, serve_paper

        try:
            paper_settings = PaperSettings()
        except ValidationError as exc:
            print(f"aiotrade paper: invalid settings:\n{_describe(exc)}", file=sys.stderr)
            return 2
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_paper(paper_settings.to_config()))
        return 0

    import uvicorn

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    if args.workers > 1 and settings.embedded_paper_venues():
        print(
            "aiotrade: --workers > 1 needs a shared paper exchange: run `python -m aiotrade paper` and set "
            "AIOTRADE_VENUES__PAPER__BASE_URL",
            file=sys.stderr,
        )
        return 2
    from aiotrade.observability.metrics import multiprocess_dir

    # With several workers, metrics are kept in files every worker writes and /metrics reads together.
    with multiprocess_dir(args.workers):
        uvicorn.run(
            "aiotrade.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            log_level=settings.log_level.lower(),
            log_config=uvicorn_log_config(settings.log_level, settings.log_format),
            access_log=False,  # our middleware writes one access line per request, with its request id
            # Every live-stream frame would be compressed once per subscriber, at ~32 KB of state each.
            ws_per_message_deflate=False,
        )
    return 0


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            lines.append(f"  {where}: {error['msg']}")
        return "\n".join(lines)
    return f"  {exc}"


if __name__ == "__main__":
    sys.exit(main())
