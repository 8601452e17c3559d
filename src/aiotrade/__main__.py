"""Command line: ``python -m aiotrade serve | paper | config | migrate | keys create|list|revoke``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from aiotrade.config import Settings
    from aiotrade.models.keys import ApiKeyInfo


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
    _add_keys_commands(commands)
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
    if args.command == "keys":
        return asyncio.run(_keys(args, settings))
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
    refusal = asyncio.run(_prepare_to_serve(settings, host, port))
    if refusal is not None:
        print(f"aiotrade: {refusal}", file=sys.stderr)
        return 2
    from aiotrade.compute import WORKER_COUNT_ENV
    from aiotrade.observability.metrics import multiprocess_dir

    # Each worker sizes its share of the machine from it (compute processes, the limiter's local share).
    os.environ[WORKER_COUNT_ENV] = str(args.workers)
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
            timeout_graceful_shutdown=settings.shutdown_grace_s,  # in-flight requests drain this long at most
            # Every live-stream frame would be compressed once per subscriber, at ~32 KB of state each.
            ws_per_message_deflate=False,
        )
    return 0


def _add_keys_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="API keys: create, list, revoke (in the configured database)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once, as the last line of stdout")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: read,trade,admin")
    create.add_argument("--accounts", required=True, help="comma-separated configured accounts, or '*' for all")
    create.add_argument("--rate-limit", type=float, help="inbound requests per second; 0: unlimited; default: 20")
    actions.add_parser("list", help="every key (id, name, scopes, accounts, rate, state); never a secret")
    revoke = actions.add_parser("revoke", help="revoke the active key of this name (every replica within 5 s)")
    revoke.add_argument("name")


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from aiotrade import errors as domain
    from aiotrade.api import auth
    from aiotrade.models.keys import NewApiKey
    from aiotrade.store.api_keys import ApiKeyStore
    from aiotrade.store.db import make_engine, make_sessions, migrate

    engine = make_engine(settings.effective_database_url())
    try:
        await migrate(engine)
        store = ApiKeyStore(make_sessions(engine))
        if args.action == "create":
            try:
                request = NewApiKey(
                    name=args.name,
                    scopes=_split(args.scopes),
                    accounts=_split(args.accounts),
                    rate_limit=args.rate_limit,
                )
                created = await auth.create_key(store, settings, request, created_by="cli")
            except (ValidationError, domain.DomainError) as exc:
                print(f"aiotrade keys create: {_describe(exc)}", file=sys.stderr)
                return 2
            print(f"created {_line(created)}", file=sys.stderr)
            print(created.key)  # alone, the last line of stdout: KEY=$(python -m aiotrade keys create ...)
            return 0
        if args.action == "list":
            for key in await auth.list_keys(store):
                print(_line(key))
            return 0
        try:
            revoked = await auth.revoke_key(store, args.name)
        except domain.NotFound as exc:
            print(f"aiotrade keys revoke: {exc.detail}", file=sys.stderr)
            return 1
        print(f"revoked {_line(revoked)}")
        return 0
    finally:
        await engine.dispose()


async def _prepare_to_serve(settings: Settings, host: str, port: int) -> str | None:
    """Before the server answers: the schema, the bootstrap key, and on loopback the local dev key; off
    loopback, a refusal (as text) when no key could open the API."""
    from aiotrade.api import auth
    from aiotrade.api.hosts import is_loopback
    from aiotrade.store.api_keys import ApiKeyStore
    from aiotrade.store.db import make_engine, make_sessions, migrate

    engine = make_engine(settings.effective_database_url())
    try:
        await migrate(engine)
        store = ApiKeyStore(make_sessions(engine))
        await auth.ensure_bootstrap_key(store, settings)
        if is_loopback(host):
            if settings.auth.dev_key:
                path = await auth.ensure_dev_key(store, settings)
                # Printed, not logged: log redaction would (rightly) mask anything shaped like an API key setting.
                print(
                    f"aiotrade: the API key for this machine is in {path}; use it with\n"
                    f'  export AUTH="Authorization: Bearer $(cat {path})"\n'
                    '  curl -H "$AUTH" '
                    f"'http://{_url_host(host)}:{port}/api/v1/exchanges'\n"
                    f"  the dashboard: http://{_url_host(host)}:{port}/dashboard (paste the key when it asks)",
                    file=sys.stderr,
                    flush=True,
                )
            return None
        if await store.count_active() == 0:
            return (
                f"refusing to serve on {host}: no active API key in the store, so nobody could use the API. "
                "Create one with `python -m aiotrade keys create --name admin --scopes read,trade,admin "
                "--accounts '*'`, or set AIOTRADE_AUTH__BOOTSTRAP_KEY (or AIOTRADE_AUTH__BOOTSTRAP_KEY_FILE)"
            )
        return None
    finally:
        await engine.dispose()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _line(key: ApiKeyInfo) -> str:
    state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M:%S}Z"
    rate = "unlimited" if key.rate_limit <= 0 else f"{key.rate_limit:g}/s"
    scopes = ",".join(s.value for s in key.scopes)
    return f"{key.key_id}  {key.name}  scopes={scopes}  accounts={','.join(key.accounts)}  rate={rate}  {state}"


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
