"""Types shared by the API models."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def _plain(value: Decimal) -> str:
    # Fixed-point, never exponent notation: "0.00000000", not "0E-8"; "100", not "1E+2".
    return format(value, "f")


Dec = Annotated[Decimal, PlainSerializer(_plain, return_type=str, when_used="json")]
"""An exact number; a fixed-point decimal string on the wire."""
