"""Types shared by the API models: exact numbers, timestamps with a zone, currency codes."""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer

# Plain decimal syntax only: an optional sign, digits, an optional fraction. No exponent, no underscore,
# no space (Python's Decimal() would accept all three and read "1_0" as ten).
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


def _plain(value: Decimal) -> str:
    # Fixed-point, never exponent notation: "0.00000000", not "0E-8"; "100", not "1E+2".
    return format(value, "f")


def _exact(value: object) -> object:
    """Strings must be plain decimals; JSON numbers are taken exactly (floats through their shortest repr)."""
    if isinstance(value, str):
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise ValueError('must be a plain decimal string such as "0.001" (digits, an optional fraction)')
        return Decimal(value)
    if isinstance(value, bool):
        raise ValueError("must be a decimal number, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    return value


Dec = Annotated[Decimal, BeforeValidator(_exact), PlainSerializer(_plain, return_type=str, when_used="json")]
"""An exact number; a fixed-point decimal string on the wire."""


def _sane_year(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_sane_year)]
"""An input instant: ISO 8601 with a zone (a zone-less time is refused), within a sane range of years."""

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,16}$", description="e.g. `USDT`")]
"""An asset code as exchanges list it: upper-case letters and digits."""
