"""Optional OpenTelemetry traces: FastAPI (server spans), SQLAlchemy (DB spans), aiohttp (ccxt's requests).

Off by default. When on, every span passes through `RedactingSpanProcessor` before it is exported: its name,
attributes, events (exception messages: ccxt's embed the signed URL) and status are redacted as log lines are
(signatures, exchange API keys, our API keys, Authorization values), and attributes named after a secret
(``http.request.header.x-mbx-apikey``) are blanked. aiohttp URLs are also scrubbed where they are recorded.

Order matters: `configure_tracing` must run before the app serves its first request or lifespan (FastAPI
builds its middleware stack then) and before the exchange pool opens its aiohttp sessions (the aiohttp
instrumentation hooks session creation); the engine, made in the lifespan, is added with
`Tracing.instrument_engine`. `Tracing.shutdown` undoes everything and flushes.

Exporters: ``console`` (stdout, exported synchronously: for development), ``otlp`` (needs the
``opentelemetry-exporter-otlp-proto-http`` package; batched by the SDK's own export thread, since a synchronous
export over the network would block the event loop), ``memory`` (tests).

FastAPI >= 0.13x also has native OpenTelemetry that switches itself on when a *global* tracer provider is
set; we never set the global provider, so exactly one server span is made per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yarl
from fastapi import FastAPI
from opentelemetry.context import Context
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine

from aiotrade.observability.redaction import REDACTED, is_secret_key, redact_text

ExporterName = Literal["console", "otlp", "memory"]

# Not worth a span each: probes and scrapes (regular expressions matched against the URL).
EXCLUDED_URLS = "/healthz,/readyz,/metrics"


@dataclass
class Tracing:
    """What `configure_tracing` set up, to add the engine later and to undo it all."""

    provider: TracerProvider
    exporter: SpanExporter
    app: FastAPI
    _engine_instrumentor: SQLAlchemyInstrumentor | None = field(default=None, repr=False)
    _aiohttp: AioHttpClientInstrumentor = field(default_factory=AioHttpClientInstrumentor, repr=False)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """DB spans for ``engine`` (one engine per process; call once, in the lifespan, after making it)."""
        instrumentor = SQLAlchemyInstrumentor()
        # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" and would silently do nothing on our
        # 2.1; its engine events are unchanged there (the tracing test proves the DB spans).
        instrumentor.instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, enable_commenter=False, skip_dep_check=True
        )
        self._engine_instrumentor = instrumentor

    def shutdown(self) -> None:
        """Remove every instrumentation, export what is pending and stop the exporter."""
        FastAPIInstrumentor.uninstrument_app(self.app)
        self._aiohttp.uninstrument()
        if self._engine_instrumentor is not None:
            self._engine_instrumentor.uninstrument()
            self._engine_instrumentor = None
        self.provider.shutdown()


def configure_tracing(
    app: FastAPI,
    engine: AsyncEngine | None = None,
    *,
    enabled: bool,
    service_name: str = "aiotrade",
    exporter: ExporterName = "console",
) -> Tracing | None:
    """Instrument ``app``, aiohttp and (if given) ``engine`` when ``enabled``; None when not (nothing changes)."""
    if not enabled:
        return None
    span_exporter = _exporter(exporter)
    inner: SpanProcessor = (
        BatchSpanProcessor(span_exporter) if exporter == "otlp" else SimpleSpanProcessor(span_exporter)
    )
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(RedactingSpanProcessor(inner))
    tracing = Tracing(provider=provider, exporter=span_exporter, app=app)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    tracing._aiohttp.instrument(tracer_provider=provider, url_filter=scrub_url)
    if engine is not None:
        tracing.instrument_engine(engine)
    return tracing


def scrub_url(url: yarl.URL) -> str:
    """The URL as a span may record it: no signature, no credentials in the query."""
    return redact_text(str(url))


class RedactingSpanProcessor(SpanProcessor):
    """Hands ``inner`` a redacted copy of every finished span (see the module docstring)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redacted_span(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    description = status.description
    return ReadableSpan(
        name=redact_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redacted_attributes(span.attributes),
        events=[Event(e.name, _redacted_attributes(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(status.status_code, redact_text(description)) if description else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _redacted_attributes(attributes: Attributes) -> dict[str, Any]:
    if not attributes:
        return {}
    redacted: dict[str, Any] = {}
    for key, value in attributes.items():
        if is_secret_key(key.rsplit(".", 1)[-1]):  # http.request.header.authorization, ...x-mbx-apikey
            redacted[key] = REDACTED
        elif isinstance(value, str):
            redacted[key] = redact_text(value)
        elif isinstance(value, Sequence) and value and isinstance(value[0], str):
            redacted[key] = tuple(redact_text(item) for item in value)
        else:
            redacted[key] = value
    return redacted


def _exporter(name: ExporterName) -> SpanExporter:
    if name == "memory":
        return InMemorySpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError(
                "the otlp exporter needs the opentelemetry-exporter-otlp-proto-http package "
                "(its endpoint is read from OTEL_EXPORTER_OTLP_ENDPOINT)"
            ) from exc
        return OTLPSpanExporter()
    raise ValueError(f"unknown span exporter {name!r}: console, otlp or memory")
