"""Logs, metrics and traces, each in a small module of its own.

- `logs`: structlog for every logger (ours, uvicorn's, SQLAlchemy's, aiohttp's, ccxt's) through one formatter,
  console or JSON lines on standard error, the request id on every line, one redaction for all of it.
- `redaction`: what must never be written anywhere (signatures, exchange credentials, our API keys).
- `metrics`: every Prometheus metric, defined once; correct across ``--workers`` (multiprocess mode).
- `tracing`: optional OpenTelemetry for FastAPI, SQLAlchemy and aiohttp (ccxt), scrubbed like the logs.

The package imports nothing on its own: each module is imported where it is used (tracing needs the extra).
"""
