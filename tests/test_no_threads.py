"""The design is natively async: nothing under src/ may reach for threads or sync ccxt."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FORBIDDEN = re.compile(
    r"run_in_executor|to_thread|ThreadPoolExecutor|ProcessPoolExecutor|\bimport threading\b"
    r"|^\s*import ccxt\s*$|^\s*from ccxt import|^\s*import ccxt\s+as|ccxt\.[a-z]\w*\(",
    re.MULTILINE,
)


def test_sources_use_no_threads_and_no_sync_ccxt() -> None:
    offenders = []
    files = list(SRC.rglob("*.py"))
    assert files, "no sources found"
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "threads or sync ccxt under src/:\n" + "\n".join(offenders)


def test_the_scan_catches_what_it_should() -> None:
    for bad in (
        "await loop.run_in_executor(None, f)",
        "await asyncio.to_thread(f)",
        "import ccxt",
        "from ccxt import binance",
        "x = ccxt.binance()",
    ):
        assert FORBIDDEN.search(bad), bad
    assert not FORBIDDEN.search("import ccxt.async_support as ccxt")
