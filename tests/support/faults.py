"""Fault policies for the paper exchange that tests script precisely."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from aiotrade.paper.faults import Fault, FaultKind


class Scripted:
    """Apply the given faults, in turn, to the next requests matching (method, path); then answer normally."""

    def __init__(self, method: str, path: str, faults: Iterable[Fault | None]) -> None:
        self.method, self.path = method, path
        self.queue: deque[Fault | None] = deque(faults)
        self.applied: list[FaultKind] = []

    def decide(self, method: str, path: str) -> Fault | None:
        if (method, path) != (self.method, self.path) or not self.queue:
            return None
        fault = self.queue.popleft()
        if fault is not None:
            self.applied.append(fault.kind)
        return fault


class Several:
    """Ask several policies; the first that injects a fault wins."""

    def __init__(self, *policies: Scripted) -> None:
        self.policies = policies

    def decide(self, method: str, path: str) -> Fault | None:
        for policy in self.policies:
            fault = policy.decide(method, path)
            if fault is not None:
                return fault
        return None
