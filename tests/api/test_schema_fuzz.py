"""Schemathesis over the OpenAPI against a real ``serve`` process (over a real paper exchange process).

Valid and invalid inputs for every operation, with the test key (every scope): no 5xx, every response
conforms to its documented schema, status and content type, and every error is problem+json. Bounded
(``EXAMPLES`` per operation and generation mode, derandomised, no shrinking) to keep the suite's time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.servers import Served, api_env, free_port, paper_env, serve_process
from tests.support.stack import auth_headers

EXAMPLES = 5  # per operation and mode; hypothesis stops early on small inputs: a few hundred requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Left alone: the kill switch and key revocation would only end the run early (they answer, then refuse).
SKIPPED = {("POST", "/api/v1/accounts/{account}/halt"), ("DELETE", "/api/v1/admin/keys/{name}")}

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    paper_port, api_port = free_port(), free_port()
    env = api_env("", tmp_path / "api", log_level="WARNING")
    async with serve_process(
        "paper", ["paper"], paper_env(paper_port), port=paper_port, ready_path="/api/v3/ping", log_dir=tmp_path
    ) as paper:
        env["AIOTRADE_VENUES__PAPER__BASE_URL"] = paper.url
        async with serve_process(
            "api", ["serve", "--port", str(api_port)], env, port=api_port, ready_path="/readyz", log_dir=tmp_path
        ) as api:
            yield api


def not_problem_json(response: Response) -> str | None:
    """Why an error answer is not problem+json (None when it is, or when it is no error)."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code >= 400 and not content_type.startswith("application/problem+json"):
        return f"{response.status_code} with content type {content_type!r}"
    return None


async def test_fuzzing_the_api_finds_no_5xx_and_only_documented_answers(served: Served, tmp_path: Path) -> None:
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    headers = auth_headers()
    failures: list[str] = []
    sent = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            strategy = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )

            @settings(
                max_examples=2 * EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def fuzz(case: schemathesis.Case) -> None:
                nonlocal sent
                sent += 1
                response = case.call(base_url=served.url, session=session, headers=headers, timeout=15)
                problem = not_problem_json(response)
                if problem is not None:
                    raise AssertionError(problem)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                fuzz()
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    (tmp_path / "failures.txt").write_text("\n\n".join(failures))
    print(f"{sent} requests sent")
    assert sent >= 100
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    assert "Traceback" not in served.log_text()
