"""structlog for every logger of the process, on standard error, redacted in one place.

One handler on the root logger, with one `structlog.stdlib.ProcessorFormatter`, renders everything: structlog's
own loggers and the stdlib ones (uvicorn.error, uvicorn.access, sqlalchemy, aiohttp, ccxt, ours through
``logging.getLogger``). Their lines share one processor chain, so one redaction step covers every logger,
every key and every traceback (tracebacks are rendered to text first, then redacted; never with locals).

- ``fmt="console"``: readable lines (colours when standard error is a terminal); ``fmt="json"``: one JSON object
  per line (``timestamp``, ``level``, ``logger``, ``event``, ``request_id`` while a request runs, ``exception``).
- Level filtering happens before anything is built: a structlog call below the level is a no-op.
- `uvicorn_log_config` is the same configuration as a ``logging.config.dictConfig`` dict for ``uvicorn.run``:
  uvicorn applies it in every worker process, and the formatter factory configures structlog there too.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import sys
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from aiotrade.observability.redaction import REDACTED, is_secret_key, redact_text, redact_value

LogFormat = Literal["console", "json"]

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("aiotrade_request_id", default=None)


def configure_logging(level: str = "INFO", fmt: LogFormat = "console") -> None:
    """Route every logger of this process through structlog (see the module docstring)."""
    logging.config.dictConfig(uvicorn_log_config(level, fmt))


def uvicorn_log_config(level: str = "INFO", fmt: LogFormat = "console") -> dict[str, Any]:
    """The configuration as a dictConfig dict: pass it as ``uvicorn.run(..., log_config=...)``."""
    name = _level_name(level)
    if fmt not in ("console", "json"):
        raise ValueError(f"log format must be 'console' or 'json', not {fmt!r}")
    # uvicorn's loggers keep no handler of their own and propagate, so the root handler formats them too.
    uvicorn_logger = {"handlers": [], "propagate": True, "level": name}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"aiotrade": {"()": f"{__name__}.build_formatter", "fmt": fmt, "level": name}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "aiotrade", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": uvicorn_logger,
            "uvicorn.error": uvicorn_logger,
            "uvicorn.access": uvicorn_logger,
        },
        "root": {"handlers": ["stderr"], "level": name},
    }


def build_formatter(fmt: LogFormat = "console", level: str = "INFO") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the root handler; configures structlog for this process as a side effect.

    It is the factory dictConfig calls, so that uvicorn's spawned workers, which apply the dict and nothing
    else of ours before importing the app, get structlog configured the same way.
    """
    level_no = logging.getLevelNamesMapping()[_level_name(level)]
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        cache_logger_on_first_use=True,
    )
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_tty(sys.stderr), exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # traceback to text, so that redaction sees it
            redact_event,
            renderer,
        ],
    )


def current_request_id() -> str | None:
    """The id of the request being handled (None outside a request): for problem bodies and audit rows."""
    return _request_id.get()


def set_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Bind ``request_id`` to this context (every log line carries it); undo with `reset_request_id`."""
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def add_request_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: the current request id under ``request_id`` (one contextvar read; nothing outside requests)."""
    request_id = _request_id.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def redact_event(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: every value made safe to write (see `aiotrade.observability.redaction`)."""
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
        elif not (value is None or isinstance(value, bool | int | float)):
            event_dict[key] = redact_value(value)
    return event_dict


def _shared_processors() -> list[Processor]:
    """What both structlog's and the stdlib's records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _level_name(level: str | int) -> str:
    name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    if name not in logging.getLevelNamesMapping():
        raise ValueError(f"unknown log level {level!r}")
    return name


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
