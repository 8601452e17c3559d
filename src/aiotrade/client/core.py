"""The client's one way to the server: build the request, send it (again, where that is safe), read the model."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from aiotrade.client import retrying
from aiotrade.client.errors import BadAnswer, TransportFailed, error_from_response
from aiotrade.client.retrying import CallKind, RetryPolicy

T = TypeVar("T")
QueryValue = str | int | float | bool | Decimal | datetime | enum.Enum | Sequence[str | enum.Enum] | None

DEFAULT_TIMEOUT_S = 10.0


class ClientCore:
    """Connection, credentials and the retry policy; the operations live in the classes built on it."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        retries: int | RetryPolicy = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)
        self._api_key = api_key
        self._timeout = timeout
        all_headers = {"Accept": "application/json", **(headers or {})}
        if api_key is not None:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=all_headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        into: type[T],
        *,
        kind: CallKind,
        query: Mapping[str, QueryValue] | None = None,
        body: BaseModel | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """Send once, and again while the policy allows; the answer as ``into``, or the typed error."""
        request = self._http.build_request(
            method,
            path,
            params=_query(query or {}),
            content=body.model_dump_json(exclude_unset=True).encode() if body is not None else None,
            headers={**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})},
        )
        policy = self.retry_policy
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                wait = policy.wait_s(attempt, None) if policy.may_resend_after(kind, exc) else None
                if wait is None:
                    raise TransportFailed(f"{method} {path}: no answer ({type(exc).__name__}: {exc})") from exc
            else:
                if response.is_success:
                    try:
                        return _read(response, into)
                    except ValueError as exc:  # pydantic's ValidationError included
                        raise BadAnswer(f"{method} {path}: {response.status_code} with an unreadable body") from exc
                error = error_from_response(response)
                wait = policy.wait_s(attempt, error.retry_after) if policy.may_resend_answer(kind, error) else None
                if wait is None:
                    raise error
            await retrying.pause(wait)
            attempt += 1


def segment(value: str) -> str:
    """A path parameter, quoted whole (a ``/`` in it stays inside its segment)."""
    return quote(value, safe="")


def _read(response: httpx.Response, into: type[T]) -> T:
    if into is str:
        return response.text  # type: ignore[return-value]
    if isinstance(into, type) and issubclass(into, BaseModel):
        return into.model_validate_json(response.content)  # type: ignore[return-value]
    return _adapter(into).validate_json(response.content)


@cache
def _adapter(into: type[T]) -> TypeAdapter[T]:
    return TypeAdapter(into)


def _query(values: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        items = value if isinstance(value, list | tuple) else [value]
        pairs.extend((name, _wire(item)) for item in items if item is not None)
    return pairs


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes sent to the API need a timezone")
        return value.isoformat()
    return str(value)
