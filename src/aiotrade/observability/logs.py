"""structlog for every logger of the process, on standard error, redacted in one place.

One handler on the root logger writes everything: the stdlib loggers (uvicorn.error, uvicorn.access, sqlalchemy,
aiohttp, ccxt, ours through ``logging.getLogger``) through a `structlog.stdlib.ProcessorFormatter`, and
structlog's own loggers straight through the same handler (no LogRecord: an access line costs a third). Both
kinds end in the same processors, so one redaction step covers every logger, every key and every traceback
(tracebacks are rendered to text first, then redacted; never with locals).

- ``fmt="console"``: readable lines (colours when standard error is a terminal); ``fmt="json"``: one JSON object
  per line (``timestamp``, ``level``, ``logger``, ``event``, ``request_id`` while a request runs, ``exception``).
- Level filtering happens before anything is built: a structlog call below the level is a no-op. structlog's
  loggers follow the configured level only (not per-logger stdlib levels).
- `uvicorn_log_config` is the same configuration as a ``logging.config.dictConfig`` dict for ``uvicorn.run``:
  uvicorn applies it in every worker process, and the formatter factory configures structlog there too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import sys
import time
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from aiotrade.observability.redaction import REDACTED, is_secret_key, might_hold_secret, redact_text, redact_value

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
        "handlers": {"stderr": {"class": f"{__name__}.StderrHandler", "formatter": "aiotrade"}},
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
    renderer: Processor
    if fmt == "json":
        renderer = _render_json
    else:
        colors = _is_tty(sys.stderr)
        renderer = structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
        if not colors:
            renderer = PlainConsoleRenderer(renderer)
    _line_format.set(fmt if fmt == "json" or isinstance(renderer, PlainConsoleRenderer) else None, level_no)
    # The same tail for both kinds of line: the traceback to text (so that redaction sees it), then render,
    # redacted.
    tail: list[Processor] = [structlog.processors.format_exc_info, RedactingRenderer(renderer)]
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.StackInfoRenderer(), *tail],
        logger_factory=_HandlerWriter,
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        cache_logger_on_first_use=True,
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler. structlog's own loggers write their rendered lines through it too (same stream, same
    lock), without the stdlib's LogRecord round trip, which costs more than the rest of an access line."""

    def __init__(self, stream: Any = None) -> None:
        # Without a stream of its own it follows sys.stderr as it is at each write, so a replaced stderr
        # (a test's capture, a closed one restored) never leaves the handler writing to a dead file.
        self._follows_stderr = stream is None
        super().__init__(stream)
        _output.handler = self

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr if self._follows_stderr else self._stream

    @stream.setter
    def stream(self, value: Any) -> None:
        self._stream = value

    def write_line(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.stream.write(line + self.terminator)
            self.flush()


class _Output:
    __slots__ = ("handler",)

    def __init__(self) -> None:
        self.handler: StderrHandler | None = None


_output = _Output()


class _HandlerWriter:
    """What structlog's loggers wrap: hands the rendered line to the current `StderrHandler`."""

    __slots__ = ("name",)

    def __init__(self, name: str = "-", *args: Any) -> None:
        self.name = name  # read by add_logger_name

    def msg(self, message: str) -> None:
        handler = _output.handler
        if handler is None:  # not configured by us: plain standard error
            sys.stderr.write(message + "\n")
        else:
            handler.write_line(message)

    log = debug = info = warning = warn = error = err = critical = fatal = exception = failure = msg


_WRITER = _HandlerWriter()


class _LineFormat:
    """What `build_formatter` configured, for `AccessLog`'s direct lines: "console" (no colours) or "json";
    None where only the processor chain can write the line (a terminal's colours)."""

    __slots__ = ("fmt", "level_no")

    def __init__(self) -> None:
        self.fmt: LogFormat | None = None
        self.level_no = logging.INFO

    def set(self, fmt: LogFormat | None, level_no: int) -> None:
        self.fmt, self.level_no = fmt, level_no


_line_format = _LineFormat()


class AccessLog:
    """One access line per request (``aiotrade.access``, INFO), written without structlog's processor chain:
    the same line the chain writes (a test says so) for a fraction of its cost on the request path. A line
    that might hold a secret, a terminal with colours, or structlog context variables bound by someone go
    through the chain instead, so redaction and layout stay those of every other line."""

    __slots__ = ("_chain", "name")

    def __init__(self, name: str = "aiotrade.access") -> None:
        self.name = name
        self._chain = structlog.get_logger(name).bind()

    @property
    def enabled(self) -> bool:
        return self._chain.is_enabled_for(logging.INFO)

    def request(self, method: str, route: str, status: int, duration_ms: float, request_id: str) -> None:
        fmt = _line_format.fmt
        if fmt is None or _structlog_context_in_use() or _might_hold_secret(route, request_id):
            self._chain.info(
                "request", method=method, route=route, status=status, duration_ms=duration_ms, request_id=request_id
            )
            return
        timestamp = add_timestamp(None, "", {})["timestamp"]
        if fmt == "json":  # the encoder's own output: its string quoting, float repr and separators
            line = (
                f'{{"method": {_json_str(method)}, "route": {_json_str(route)}, "status": {int(status)!r}, '
                f'"duration_ms": {float(duration_ms)!r}, "request_id": {_json_str(request_id)}, '
                f'"event": "request", "level": "info", "logger": {_json_str(self.name)}, "timestamp": "{timestamp}"}}'
            )
        else:
            line = (
                f"{timestamp} [{'info':<{_LEVEL_WIDTH}}] {'request':<{_EVENT_WIDTH}} [{self.name}] "
                f"duration_ms={duration_ms!r} method={_console_repr(method)} request_id={_console_repr(request_id)} "
                f"route={_console_repr(route)} status={status!r}"
            )
        _WRITER.msg(line)


_json_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_route_verdicts: dict[str, bool] = {}


def _might_hold_secret(route: str, request_id: str) -> bool:
    """Whether the access line must take the redacting path (route verdicts cached: templates are few)."""
    verdict = _route_verdicts.get(route)
    if verdict is None:
        verdict = might_hold_secret(route)
        if len(_route_verdicts) < 1024:
            _route_verdicts[route] = verdict
    return verdict or might_hold_secret(request_id)


def _structlog_context_in_use() -> bool:
    """Whether any structlog context variable was ever made (`bind_contextvars`): then only the chain merges it."""
    return bool(structlog.contextvars._CONTEXT_VARS)


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


class RedactingRenderer:
    """The last processor: renders the line; if the rendered line holds anything a secret could hide behind
    (see `might_hold_secret`), renders it again from `redact_event`'s copy of the values.

    Checking the finished line once is several times cheaper than checking each value, and just as complete:
    every pattern and every secret key name contains one of the trigger words, and a renderer writes words
    as they are (JSON escapes only quotes, backslashes, control and non-ASCII characters).
    """

    __slots__ = ("renderer",)

    def __init__(self, renderer: Processor) -> None:
        self.renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        original = event_dict.copy()  # a renderer may consume the dict (the console renderer pops keys)
        line = self.renderer(logger, method_name, event_dict)
        if not isinstance(line, str) or might_hold_secret(line):
            line = self.renderer(logger, method_name, redact_event(logger, method_name, original))
        return line  # type: ignore[return-value]


def redact_event(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: every value made safe to write (see `aiotrade.observability.redaction`)."""
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:  # the common case first, and cheaply (an access line is all str and numbers)
            if might_hold_secret(value):
                event_dict[key] = redact_text(value)
        elif not (value is None or type(value) in _PLAIN):
            event_dict[key] = redact_value(value)
    return event_dict


_PLAIN = frozenset({int, float, bool})


def _json_fallback(value: object) -> str:
    return repr(value)


# One encoder for every line: json.dumps with keyword arguments builds a new encoder per call.
_json_encode = json.JSONEncoder(default=_json_fallback).encode


def _render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    return _json_encode(event_dict)


class PlainConsoleRenderer:
    """structlog's console layout without colours, written directly: the same line as ``ConsoleRenderer(
    colors=False)`` (timestamp, padded level and event, logger, then the other keys sorted) at a fraction of
    the cost, which keeps the access line within its budget on the request path. Lines with a traceback or a
    stack go to the full renderer."""

    __slots__ = ("full",)

    def __init__(self, full: Processor) -> None:
        self.full = full

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        if "exception" in event_dict or "exc_info" in event_dict or "stack" in event_dict:
            return self.full(logger, method_name, event_dict)  # type: ignore[return-value]
        parts = []
        timestamp = event_dict.pop("timestamp", None)
        if timestamp is not None:
            parts.append(str(timestamp))
        level = event_dict.pop("level", None)
        if level is not None:
            parts.append(f"[{level:<{_LEVEL_WIDTH}}]")
        event = event_dict.pop("event", None)
        if event is not None:
            parts.append(f"{event!s:<{_EVENT_WIDTH}}")
        for key in ("logger", "logger_name"):
            name = event_dict.pop(key, None)
            if name is not None:
                parts.append(f"[{name}]")
        for key in sorted(event_dict):
            parts.append(f"{key}={_console_repr(event_dict[key])}")
        return " ".join(part for part in parts if part).rstrip(" ")


_LEVEL_WIDTH = max(map(len, structlog.dev.ConsoleRenderer.get_default_level_styles(colors=False)))
_EVENT_WIDTH = 30  # ConsoleRenderer's pad_event_to
_QUOTED = frozenset(" \t=\r\n\"'")


def _console_repr(value: object) -> str:
    if type(value) is str and not _QUOTED.intersection(value):
        return value
    return repr(value)


class _Timestamper:
    """Processor: ``timestamp`` as ISO 8601 UTC with microseconds; the date part is formatted once a second
    (structlog's TimeStamper builds a datetime per line, ~5x the cost)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


add_timestamp = _Timestamper()


def _shared_processors() -> list[Processor]:
    """What both structlog's and the stdlib's records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_timestamp,
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
