"""The client cannot fall behind the API: every operation in the app's OpenAPI has a method of its name whose
parameters match (names, order, required-ness, the body model, the answer model), and calling it sends that
operation's method, path, query names, headers and body. Self-checks show the walk fails on a route added
without a method and on a method whose parameters drift."""

from __future__ import annotations

import enum
import inspect
import keyword
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import BaseModel

from aiotrade.app import create_app
from aiotrade.client import AiotradeClient, ClientError, RetryPolicy, retrying
from aiotrade.client.stream import STREAM_PATH

METHODS = ("get", "put", "post", "delete", "patch")
CLEAN_ID = re.compile(r"^[a-z][a-z0-9_]*$")
FASTAPI_DEFAULT_ID = re.compile(r"_(get|put|post|delete|patch)$")


@dataclass
class Operation:
    id: str
    method: str
    path: str
    path_params: list[str] = field(default_factory=list)
    query: dict[str, bool] = field(default_factory=dict)  # wire name -> required
    headers: dict[str, bool] = field(default_factory=dict)
    body: tuple[str, bool] | None = None  # (schema name, required)
    answer: str | None = None  # schema name, "list[Name]", or None when not a model


def python_name(wire: str) -> str:
    """The client's name for a wire parameter: snake case, a trailing ``_`` for a Python keyword (``from_``)."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", wire).strip("_").lower()
    return name + "_" if keyword.iskeyword(name) else name


def operations(openapi: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in openapi["paths"].items():
        for method in METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            op = Operation(spec.get("operationId", ""), method.upper(), path)
            op.path_params = re.findall(r"{([^}]+)}", path)
            for param in spec.get("parameters", []):
                if param["in"] == "query":
                    op.query[param["name"]] = bool(param.get("required"))
                elif param["in"] == "header":
                    op.headers[param["name"]] = bool(param.get("required"))
            if "requestBody" in spec:
                schema = spec["requestBody"]["content"]["application/json"]["schema"]
                op.body = (_schema_name(schema) or "?", bool(spec["requestBody"].get("required")))
            op.answer = _answer(spec)
            found.append(op)
    return found


def mismatches(openapi: dict[str, Any], client: type) -> list[str]:
    """Everything by which ``client`` differs from the operations of ``openapi`` (empty: it conforms)."""
    problems = []
    for op in operations(openapi):
        if not CLEAN_ID.match(op.id) or FASTAPI_DEFAULT_ID.search(op.id) or "_api_v1_" in op.id:
            problems.append(f"{op.method} {op.path}: operation id {op.id!r} is FastAPI's default; give it one")
            continue
        method = inspect.getattr_static(client, op.id, None)
        if method is None or not inspect.iscoroutinefunction(method):
            problems.append(f"{op.id} ({op.method} {op.path}): no client method")
            continue
        problems += [f"{op.id}: {p}" for p in _signature_problems(op, method)]
    return problems


def _signature_problems(op: Operation, method: Any) -> list[str]:
    params = list(inspect.signature(method).parameters.values())[1:]
    hints = typing.get_type_hints(method)
    positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keywords = {p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    problems = []
    if len(positional) + len(keywords) != len(params):
        problems.append("only plain and keyword-only parameters")
    # Path parameters first, then required query parameters, then the body.
    expected = [python_name(n) for n in op.path_params] + [python_name(n) for n, r in op.query.items() if r]
    if op.body is not None:
        expected.append("body")
    if [p.name for p in positional] != expected:
        problems.append(f"positional parameters {[p.name for p in positional]}, the API's are {expected}")
    for p in positional:
        optional_body = p.name == "body" and op.body is not None and not op.body[1]
        if (p.default is not inspect.Parameter.empty) != optional_body:
            problems.append(f"{p.name}: {'optional' if optional_body else 'required'} in the API")
    optional = {python_name(n) for n, r in {**op.query, **op.headers}.items() if not r}
    if set(keywords) != optional:
        problems.append(f"keyword-only parameters {sorted(keywords)}, the API's optional ones are {sorted(optional)}")
    problems += [f"{n}: optional in the API, needs a default" for n, p in keywords.items() if p.default is p.empty]
    if any(r for r in op.headers.values()):
        problems.append(f"required headers {op.headers} have no rule here")
    if op.body is not None and "body" in hints and _name_of(hints["body"]) != op.body[0]:
        problems.append(f"body is {_name_of(hints['body'])}, the API takes {op.body[0]}")
    if op.answer is not None and _name_of(hints.get("return")) != op.answer:
        problems.append(f"returns {_name_of(hints.get('return'))}, the API answers {op.answer}")
    return problems


def _schema_name(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:  # pydantic names a model used both ways Name-Input and Name-Output
        return re.sub(r"-(Input|Output)$", "", schema["$ref"].rsplit("/", 1)[-1])
    for choice in schema.get("anyOf", []):  # an optional body: Model | None
        if "$ref" in choice:
            return choice["$ref"].rsplit("/", 1)[-1]
    return None


def _answer(spec: dict[str, Any]) -> str | None:
    for status, response in spec.get("responses", {}).items():
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("type") == "array":
                inner = _schema_name(schema.get("items", {}))
                return f"list[{inner}]" if inner else None
            return _schema_name(schema)
    return None


def _name_of(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _name_of(args[0])
    if typing.get_origin(hint) is list:
        return f"list[{_name_of(args[0])}]"
    return getattr(hint, "__name__", str(hint))


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def test_every_operation_has_a_client_method_whose_parameters_match(openapi: dict[str, Any]) -> None:
    problems = mismatches(openapi, AiotradeClient)
    assert not problems, "the client is behind the API:\n" + "\n".join(problems)


def test_self_check_a_route_added_without_a_method_is_caught() -> None:
    app = create_app()

    @app.get("/api/v1/widgets/{widget}", operation_id="get_widget")
    async def get_widget(widget: str, colour: str) -> dict[str, str]:
        return {}

    @app.get("/api/v1/gadgets")
    async def list_gadgets() -> dict[str, str]:  # no operation id: FastAPI's default name
        return {}

    problems = mismatches(app.openapi(), AiotradeClient)
    assert any(p.startswith("get_widget (GET /api/v1/widgets/{widget}): no client method") for p in problems)
    assert any("list_gadgets_api_v1_gadgets_get" in p and "FastAPI's default" in p for p in problems)


def test_self_check_a_method_whose_parameters_drift_is_caught(openapi: dict[str, Any]) -> None:
    class Drifted(AiotradeClient):
        async def get_ticker(self, exchange: str, *, symbol: str | None = None) -> Any:  # symbol is required
            raise NotImplementedError

        async def list_orders(self, account: str, *, symbol: str | None = None) -> Any:  # filters missing
            raise NotImplementedError

        async def create_order(self, account: str, body: BaseModel) -> Any:  # no idempotency_key, wrong types
            raise NotImplementedError

    problems = mismatches(openapi, Drifted)
    assert any(p.startswith("get_ticker: positional parameters ['exchange']") for p in problems)
    assert any(p.startswith("list_orders: keyword-only parameters") and "'from_'" in p for p in problems)
    assert any(p.startswith("create_order: keyword-only") and "idempotency_key" in p for p in problems)
    assert any(p == "create_order: body is BaseModel, the API takes CreateOrderRequest" for p in problems)
    assert any(p.startswith("create_order: returns Any") for p in problems)


# ----- what each method sends -------------------------------------------------------------------------------


class Sent(Exception):
    """Raised by the recording transport: the request is all this test looks at."""


async def test_every_method_sends_its_operations_method_path_query_and_body(
    openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        # First a 503 that says nothing was done: reads, PUTs and keyed creates must ask again.
        requests.append(request)
        status, slug = (503, "exchange-circuit-open") if len(requests) == 1 else (418, "recorded")
        return httpx.Response(status, json={"type": f"urn:aiotrade:problem:{slug}", "status": status})

    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(retrying, "pause", no_wait)
    problems = []
    transport = httpx.MockTransport(record)
    async with AiotradeClient("http://api.test", api_key="at_x", transport=transport, retries=RetryPolicy(1)) as c:
        for op in operations(openapi):
            method = getattr(c, op.id, None)
            if method is None:
                continue  # reported by the test above
            args, kwargs = _arguments(op, method)
            requests.clear()
            with pytest.raises(ClientError):
                await method(*args, **kwargs)
            sent = requests[-1]
            path = op.path
            for name in op.path_params:
                path = path.replace("{" + name + "}", quote(f"p/{name}", safe=""))
            if (sent.method, sent.url.raw_path.split(b"?")[0].decode()) != (op.method, path):
                problems.append(f"{op.id}: sent {sent.method} {sent.url.path}, expected {op.method} {path}")
            if set(sent.url.params.keys()) != set(op.query):
                problems.append(f"{op.id}: query {sorted(sent.url.params.keys())}, expected {sorted(op.query)}")
            missing = [h for h in op.headers if h not in sent.headers]
            if missing:
                problems.append(f"{op.id}: headers {missing} not sent")
            if bool(sent.content) != (op.body is not None):
                problems.append(f"{op.id}: body {'sent' if sent.content else 'missing'}")
            if sent.headers.get("authorization") != "Bearer at_x":
                problems.append(f"{op.id}: no API key sent")
            keyed = "Idempotency-Key" in op.headers
            if (op.method in ("GET", "PUT") or keyed) and len(requests) != 2:
                problems.append(f"{op.id}: a {op.method} not asked again after a 503 that did nothing")
            if keyed and len({r.headers.get("idempotency-key") for r in requests}) != 1:
                problems.append(f"{op.id}: its retry sent another Idempotency-Key")
    assert not problems, "\n".join(problems)


def _arguments(op: Operation, method: Any) -> tuple[list[Any], dict[str, Any]]:
    """A value for every parameter (path values hold a ``/`` to show they are quoted as one segment)."""
    hints = typing.get_type_hints(method)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(method).parameters.values():  # bound: no self
        if param.name in (python_name(n) for n in op.path_params):
            value: Any = f"p/{next(n for n in op.path_params if python_name(n) == param.name)}"
        else:
            value = _sample(hints[param.name])
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return args, kwargs


def _sample(hint: Any) -> Any:
    origin, args = typing.get_origin(hint), [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return _sample(args[0])
    if origin in (list, Sequence) or (origin is not None and issubclass(origin, Sequence)):
        return [_sample(args[0])]
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint.model_construct()  # no fields: the body's presence is what is checked
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    samples: dict[Any, Any] = {str: "x", int: 1, float: 1.0, bool: True, datetime: datetime(2026, 1, 2, tzinfo=UTC)}
    return samples[hint]


def test_the_stream_path_is_the_apps_live_stream_route() -> None:
    assert create_app().url_path_for("portfolio_live_stream") == STREAM_PATH
