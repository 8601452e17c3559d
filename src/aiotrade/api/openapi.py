"""What the OpenAPI document says about errors: every failure is a problem+json body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProblemParam(BaseModel):
    name: str = Field(description="The parameter, or a JSON pointer into the body (`/amount`).")
    detail: str
    in_: str | None = Field(default=None, alias="in", description="query, path, header or body.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[ProblemParam] | None = None
    request_id: str | None = Field(default=None, description="The request's id (X-Request-ID), for support.")
    order_may_exist: bool | None = Field(default=None, description="Order requests: whether an order may exist.")


_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {**_PROBLEM, "description": "Unknown exchange, account or order"},
    422: {**_PROBLEM, "description": "Invalid input; `errors` names each parameter"},
    502: {**_PROBLEM, "description": "The exchange refused or failed the request"},
    503: {**_PROBLEM, "description": "Exchange unavailable or rate-limited (see Retry-After)"},
    504: {**_PROBLEM, "description": "The exchange did not answer in time"},
}


_BODY_PROBLEMS: dict[str, dict[str, Any]] = {
    "400": {"description": "Malformed JSON body (e.g. a key given twice)", "content": _PROBLEM["content"]},
    "413": {"description": "Request body too large", "content": _PROBLEM["content"]},
}
_RATE_PROBLEM = {"description": "Too many requests for this API key (see Retry-After)", "content": _PROBLEM["content"]}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problems the middleware produces to the operations they can reach: 400 and 413 where a
    body is read, 429 on every `/api` operation; and FastAPI's own 422 (documented as a JSON
    ``HTTPValidationError``) as the problem+json it is answered with."""
    problem = {"application/problem+json": {}}
    if "Problem" in schema.get("components", {}).get("schemas", {}):
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            invalid = responses.get("422")
            if invalid is not None and "application/problem+json" not in invalid.get("content", {}):
                responses["422"] = {"description": "Invalid input; `errors` names each parameter", "content": problem}
            if "requestBody" in operation:
                for status, response in _BODY_PROBLEMS.items():
                    responses.setdefault(status, response)
            if path.startswith("/api/"):
                responses.setdefault("429", _RATE_PROBLEM)
    return schema
