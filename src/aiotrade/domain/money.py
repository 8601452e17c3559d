"""The money quantum and the quantum of ratios: how exact numbers leave our hands.

Quote amounts we derive (notionals, fees, values, PnL) are quantised to 8 decimal places, as exchanges
print them; ratios, probabilities and returns computed as floats in `quant/` come back as Decimal to
`RATIO_PLACES` places. Both round half-even.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

MONEY_PLACES = 8
RATIO_PLACES = 8
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
RATIO_QUANTUM = Decimal(1).scaleb(-RATIO_PLACES)


def money(value: Decimal) -> Decimal:
    """A quote amount we derived, to the money quantum (half-even)."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def ratio(value: float | Decimal) -> Decimal:
    """A ratio (often a float from quant/) as Decimal to RATIO_PLACES places, half-even.

    A float goes through its shortest repr, never its binary expansion; NaN and infinity are refused:
    they would be a bug upstream, never a number to show.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite ratio: {value!r}")
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return exact.quantize(RATIO_QUANTUM, rounding=ROUND_HALF_EVEN)
