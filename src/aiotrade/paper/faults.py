"""Fault injection: one decision per request, made by a policy the server asks before it answers.

The policy is the seam: `RandomFaults` draws from configured rates; tests or later features (the order API's
"commit, then drop the response") can plug in any object with the same `decide` method.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aiotrade.paper.config import FaultConfig


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"  # an HTTP 5xx instead of the answer
    RATE_LIMIT = "rate_limit"  # an HTTP 429 -1003 that the weight budget did not call for
    SLOW = "slow"  # the answer, but only after `delay_ms`
    DROP = "drop"  # the connection is closed without an answer
    COMMIT_THEN_DROP = "commit_then_drop"  # executed, then the connection is closed without an answer
    COMMIT_THEN_SLOW = "commit_then_slow"  # executed, the answer held for `delay_ms`
    MALFORMED = "malformed"  # executed, answered 200 with a body that is not JSON

    @property
    def after_execution(self) -> bool:
        return self in (FaultKind.COMMIT_THEN_DROP, FaultKind.COMMIT_THEN_SLOW, FaultKind.MALFORMED)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int = 0  # for SERVER_ERROR
    json_body: bool = False  # for SERVER_ERROR: Binance's JSON error rather than a gateway page
    delay_ms: int = 0  # for SLOW
    retry_after_s: int = 0  # for RATE_LIMIT


class FaultPolicy(Protocol):
    def decide(self, method: str, path: str) -> Fault | None:
        """The fault to inject into this request, or None to answer normally."""
        ...


class RandomFaults:
    """Faults drawn with the configured probabilities from a seeded stream (one draw per eligible request)."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self._random = random.Random(seed)

    def decide(self, method: str, path: str) -> Fault | None:
        config = self.config
        if not config.active or (config.paths is not None and path not in config.paths):
            return None
        if config.methods is not None and method not in config.methods:
            return None
        draw = self._random.random()
        if draw < config.error_rate:
            status = config.error_statuses[self._random.randrange(len(config.error_statuses))]
            return Fault(FaultKind.SERVER_ERROR, status=status, json_body=config.error_body == "json")
        draw -= config.error_rate
        if draw < config.rate_limit_rate:
            return Fault(FaultKind.RATE_LIMIT, retry_after_s=config.rate_limit_retry_after_s)
        draw -= config.rate_limit_rate
        if draw < config.slow_rate:
            return Fault(FaultKind.SLOW, delay_ms=config.slow_delay_ms)
        draw -= config.slow_rate
        if draw < config.drop_rate:
            return Fault(FaultKind.DROP)
        draw -= config.drop_rate
        if draw < config.commit_drop_rate:
            return Fault(FaultKind.COMMIT_THEN_DROP)
        draw -= config.commit_drop_rate
        if draw < config.commit_slow_rate:
            return Fault(FaultKind.COMMIT_THEN_SLOW, delay_ms=config.slow_delay_ms)
        draw -= config.commit_slow_rate
        if draw < config.malformed_rate:
            return Fault(FaultKind.MALFORMED)
        return None
