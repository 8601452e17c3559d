"""Candles as columns: exact text for the API, floats for the maths, made once per series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np

from aiotrade.domain.convert import ms_to_datetime
from aiotrade.models.market import Candle

OPEN, HIGH, LOW, CLOSE, VOLUME = range(5)


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """Candles of one symbol, oldest first, one per open time.

    ``values`` holds the exchange's exact text (an object array, one row per candle: open, high, low,
    close, volume); float columns are derived from it on demand.
    """

    timestamps: np.ndarray  # int64 open times in ms
    values: np.ndarray  # object array (n, 5) of decimal strings

    def __len__(self) -> int:
        return len(self.timestamps)

    def column(self, index: int) -> np.ndarray:
        return self.values[:, index].astype(np.float64) if len(self) else np.empty(0)

    def closes(self) -> np.ndarray:
        return self.column(CLOSE)

    def start(self) -> datetime | None:
        return ms_to_datetime(int(self.timestamps[0])) if len(self) else None

    def candles(self) -> list[Candle]:
        """The API's exact candles (Decimal from the exchange's text, volume 0 when it sent none)."""
        out = []
        for stamp, (o, h, low, c, v) in zip(self.timestamps.tolist(), self.values.tolist(), strict=True):
            out.append(
                Candle(
                    timestamp=ms_to_datetime(stamp),
                    open=Decimal(o),
                    high=Decimal(h),
                    low=Decimal(low),
                    close=Decimal(c),
                    volume=Decimal(v) if v is not None else Decimal(0),
                )
            )
        return out

    @classmethod
    def from_rows(cls, rows: list[list[object]]) -> CandleSeries:
        """From [ms, o, h, l, c, v] rows (any order, duplicates allowed: the last copy wins)."""
        by_time = {int(row[0]): row for row in rows}  # type: ignore[call-overload]
        stamps = sorted(by_time)
        values = np.empty((len(stamps), 5), dtype=object)
        for i, stamp in enumerate(stamps):
            values[i] = [None if v is None else str(v) for v in by_time[stamp][1:6]]
        return cls(np.asarray(stamps, dtype=np.int64), values)

    @classmethod
    def from_pages(cls, pages: Sequence[tuple[np.ndarray, np.ndarray]]) -> CandleSeries:
        """From pages of (open times, exact text rows), in any order, duplicates allowed: the last copy
        wins. Vectorised: no Python work per candle."""
        if not pages:
            return cls(np.empty(0, dtype=np.int64), np.empty((0, 5), dtype=object))
        stamps = np.concatenate([stamps for stamps, _ in pages])
        values = np.concatenate([values for _, values in pages])
        # np.unique keeps each value's first occurrence: taken over the reversed arrays, that is the last copy.
        _, first_from_end = np.unique(stamps[::-1], return_index=True)
        keep = len(stamps) - 1 - first_from_end  # ascending open times
        return cls(stamps[keep], values[keep])

    def last(self, count: int) -> CandleSeries:
        return CandleSeries(self.timestamps[-count:], self.values[-count:]) if count < len(self) else self


def aligned_closes(series: list[CandleSeries]) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, closes[time, symbol]) on the timestamps every series has (vectorised)."""
    common = series[0].timestamps if series else np.empty(0, dtype=np.int64)
    for s in series[1:]:
        common = np.intersect1d(common, s.timestamps, assume_unique=True)
    matrix = np.empty((len(common), len(series)))
    for j, s in enumerate(series):
        matrix[:, j] = s.closes()[np.searchsorted(s.timestamps, common)]
    return common, matrix
