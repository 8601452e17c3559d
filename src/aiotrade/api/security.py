"""What each route requires: a scope, and for routes that act on an account, that account on the key.

Every route declares its requirement with ``dependencies=[require(...)]`` (or ``open_route()``), and a test
walks the app's routes and fails on one without. The check runs before the body is validated: FastAPI
solves a route's dependencies before it reports body errors, and a body-carried account (or the flag that
raises a dry run to a trade) is read leniently from the raw JSON here. The key itself was verified by the
authentication middleware (`api/auth.py`), which put the ``Principal`` on the request.

Refusals are the same for an account that exists and one that does not: a 403 names neither.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from starlette.routing import BaseRoute

from aiotrade import errors as domain
from aiotrade.config import ALL_ACCOUNTS
from aiotrade.models.keys import Scope

AccountSource = Literal["none", "path", "query", "body"]
PRINCIPAL_STATE = "principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key (or a WebSocket ticket of one), with what it may do."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    accounts: frozenset[str]
    rate_limit: float  # inbound requests per second; 0: unlimited

    def may_act_on(self, account: str) -> bool:
        return ALL_ACCOUNTS in self.accounts or account in self.accounts


@dataclass(frozen=True, slots=True)
class Requirement:
    """A route's declared need. ``scope`` None: open to anyone. ``raised_by``: a body flag that, unless
    absent or false, makes the route need ``raised_to`` instead (a rebalance's ``execute``)."""

    scope: Scope | None
    account: AccountSource = "none"
    raised_by: str | None = None
    raised_to: Scope | None = None


def require(
    scope: Scope, *, account: AccountSource = "none", raised_by: str | None = None, raised_to: Scope | None = None
) -> DependsParam:
    """The dependency a route declares: ``dependencies=[require(Scope.TRADE, account="path")]``."""
    requirement = Requirement(scope, account, raised_by, raised_to)

    async def check(request: Request) -> Principal:
        return await authorize(request, requirement)

    check.requirement = requirement  # type: ignore[attr-defined]
    return Depends(check)


def open_route() -> DependsParam:
    """Declares a route open to callers without a key (liveness, readiness)."""

    async def no_check() -> None:
        return None

    no_check.requirement = Requirement(None)  # type: ignore[attr-defined]
    return Depends(no_check)


def requirement_of(call: Callable[..., Awaitable[Any]] | None) -> Requirement | None:
    return getattr(call, "requirement", None)


async def authorize(request: Request, requirement: Requirement) -> Principal:
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    if not isinstance(principal, Principal):
        raise domain.Unauthorized("an API key is required: send Authorization: Bearer <key>")
    body = await _lenient_body(request) if requirement.account == "body" or requirement.raised_by else {}
    needed = requirement.scope
    if requirement.raised_by is not None and body.get(requirement.raised_by, False) not in (False, None):
        needed = requirement.raised_to
    if needed is not None and needed not in principal.scopes:
        raise domain.Forbidden(f"this API key lacks the {needed.value!r} scope")
    if requirement.account != "none":
        account = _account(request, requirement.account, body) or request.app.state.settings.default_account
        check_account(principal, account)
    return principal


def check_account(principal: Principal, account: str) -> None:
    if not principal.may_act_on(account):
        raise domain.Forbidden("this API key may not act on this account")


async def body_account(request: Request) -> str | None:
    """The ``account`` field of a JSON body, read leniently (None when absent or not a string)."""
    return _account(request, "body", await _lenient_body(request))


def _account(request: Request, source: AccountSource, body: dict[str, Any]) -> str | None:
    if source == "path":
        value: object = request.path_params.get("account")
    elif source == "query":
        value = request.query_params.get("account")
    else:
        value = body.get("account")
    # Anything but a string is refused by validation later; until then it names the default account.
    return value if isinstance(value, str) and value else None


async def _lenient_body(request: Request) -> dict[str, Any]:
    """The JSON body as a dict when it is one, else empty (validation reports what is wrong with it)."""
    try:
        parsed = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


# ----- the OpenAPI document ----------------------------------------------------------------------------------

SECURITY_SCHEME = "apiKey"
_AUTH_PROBLEMS: dict[str, dict[str, Any]] = {
    "401": {
        "description": "No API key, or not a valid one (WWW-Authenticate: Bearer)",
        "content": {"application/problem+json": {}},
    },
    "403": {
        "description": "The key lacks the scope, or may not act on the account",
        "content": {"application/problem+json": {}},
    },
}


def routes_with_requirements(routes: Iterable[BaseRoute]) -> Iterator[tuple[BaseRoute, Requirement | None]]:
    """Every route of the app (included routers flattened) with its declared requirement, if any."""
    for route in _flat(routes):
        dependant = getattr(route, "dependant", None)
        found = None
        if dependant is not None:
            found = next((r for d in dependant.dependencies if (r := requirement_of(d.call)) is not None), None)
        yield route, found


def document_security(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The bearer scheme, and on every operation that needs a key: its scope, 401 and 403."""
    needs: dict[tuple[str, str], Requirement] = {}
    for route, requirement in routes_with_requirements(routes):
        if requirement is not None and requirement.scope is not None:
            for method in getattr(route, "methods", None) or ():
                needs[(getattr(route, "path_format", ""), method.lower())] = requirement
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An aiotrade API key (`at_...`): `python -m aiotrade keys create` or the dev key in "
        "data/dev-api-key.",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            requirement = needs.get((path, method))
            if requirement is None or not isinstance(operation, dict):
                continue
            operation["security"] = [{SECURITY_SCHEME: []}]
            scope = requirement.scope.value if requirement.scope else ""
            note = f"Requires scope `{scope}`"
            if requirement.raised_by is not None and requirement.raised_to is not None:
                note += f" (`{requirement.raised_to.value}` with `{requirement.raised_by}`)"
            if requirement.account != "none":
                note += f", on the account ({requirement.account})"
            operation["description"] = (operation.get("description", "") + f"\n\n{note}.").strip()
            for status, response in _AUTH_PROBLEMS.items():
                operation.setdefault("responses", {}).setdefault(status, response)
    return schema


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
        yield from _flat(included.routes) if included is not None else [route]
