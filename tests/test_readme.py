"""The README's examples work as written: `python -m aiotrade serve` as `make run` starts it (embedded paper
exchange, SQLite, a dev key written to data/), then every shell example of "Try it" run by bash, each
curl failing the script on an HTTP error."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def try_it_script(port: int) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Try it") : readme.index("\n## ", readme.index("## Try it") + 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 3, "Try it has its market, risk and portfolio examples"
    script = "\n".join(blocks).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    # The stream client waits for frames forever: run it for a moment and expect it to be cut by timeout.
    # (its standard input held open for a moment: at end of input the client hangs up).
    script = re.sub(
        r"^\.venv/bin/python -m websockets (.*)$",
        rf"sleep 3 | timeout 5 {sys.executable} -m websockets \1 > stream.out || test $? = 124",
        script,
        flags=re.M,
    )
    prelude = (
        "set -euo pipefail\n"
        "trap 'echo \"failed: $BASH_COMMAND\" >&2' ERR\n"
        'curl() { command curl --fail-with-body --max-time 60 "$@"; }\n'
    )
    return prelude + script + "\ngrep -q snapshot stream.out\n"


@pytest.mark.timeout(180)
async def test_the_readme_examples_work_as_written(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AIOTRADE_LOG_LEVEL": "WARNING"}
    env = {k: v for k, v in env.items() if not k.startswith("AIOTRADE_") or k == "AIOTRADE_LOG_LEVEL"}
    log = open(tmp_path / "serve.log", "wb")  # noqa: ASYNC230, SIM115 - once per test
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiotrade", "serve", "--port", str(port), cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(600):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.returncode is None, (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.1)
        assert (tmp_path / "data" / "dev-api-key").is_file()
        script = tmp_path / "try_it.sh"
        script.write_text(try_it_script(port))
        bash = await asyncio.create_subprocess_exec(
            "bash", str(script), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(bash.communicate(), 150)
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        assert bash.returncode == 0, f"{stdout[-1500:]}\n--- stderr:\n{stderr[-3000:]}"
        assert '"status"' in stdout  # answers were printed, as a reader sees them
    finally:
        server.terminate()
        await server.wait()
        log.close()
