"""Administration over REST: API keys (make, list, revoke) and the metrics exposition. Scope `admin`.

An admin key makes and revokes keys only within its own accounts and scopes (`auth.check_within_power`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import PlainTextResponse

from aiotrade.api import auth
from aiotrade.api.deps import ApiKeys, AppSettings, Caller
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.models.keys import KEY_NAME_PATTERN, ApiKeyInfo, CreatedApiKey, NewApiKey, Scope
from aiotrade.observability.metrics import render_metrics

router = APIRouter(tags=["admin"], responses=PROBLEM_RESPONSES, dependencies=[require(Scope.ADMIN)])

KeyName = Annotated[str, Path(pattern=KEY_NAME_PATTERN, description="The key's name.")]


@router.post(
    "/api/v1/admin/keys",
    operation_id="create_api_key",
    summary="Make an API key; the key is in this answer only (it is stored as a digest)",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "An active key has this name"}},
)
async def create_key(
    request: Request, keys: ApiKeys, settings: AppSettings, caller: Caller, body: NewApiKey, response: Response
) -> CreatedApiKey:
    response.headers["Cache-Control"] = "no-store"
    return await auth.create_key(
        keys, settings, body, created_by=caller.key_id, granted_by=caller, authenticator=request.app.state.authenticator
    )


@router.get(
    "/api/v1/admin/keys",
    operation_id="list_api_keys",
    summary="Every API key within the caller's own accounts and scopes, revoked ones included",
)
async def list_keys(keys: ApiKeys, caller: Caller) -> list[ApiKeyInfo]:
    return await auth.list_keys(keys, seen_by=caller)


@router.delete(
    "/api/v1/admin/keys/{name}",
    operation_id="revoke_api_key",
    summary="Revoke the active key of this name (every replica refuses it within 5 s); only a key within the "
    "caller's own accounts and scopes",
)
async def revoke_key(keys: ApiKeys, caller: Caller, name: KeyName) -> ApiKeyInfo:
    return await auth.revoke_key(keys, name, revoked_by=caller)


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (every worker's)",
    tags=["health"],
    response_class=PlainTextResponse,
    responses={200: {"description": "The Prometheus text exposition format"}},
)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
