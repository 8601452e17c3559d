"""The README's "Python client" example works as written: run by a fresh interpreter against the app served
over HTTP, with the dev key file where `make run` writes it."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from tests.client.conftest import Served
from tests.support.stack import TEST_API_KEY

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Python client")
    section = readme[start : readme.find("\n## ", start + 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


async def test_the_readme_client_example_runs_as_written(served: Served, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dev-api-key").write_text(TEST_API_KEY + "\n")
    script = readme_example().replace("http://127.0.0.1:8000", served.url)
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(run.communicate(), 90)
    stdout = out.decode()
    assert run.returncode == 0, err.decode()[-3000:]
    assert " OPEN " in stdout and "refused: [" in stdout and "CANCELED" in stdout, stdout
    assert "total value:" in stdout, stdout
