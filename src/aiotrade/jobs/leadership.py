"""Leadership of the background jobs: one replica at a time, through a lease in the shared database.

Every replica runs `Leadership.run`: it takes or renews the lease every TTL/3 and knows whether it leads.
A leader that dies stops renewing; its lease expires within one TTL and a candidate, trying every TTL/3,
takes over within 4/3 TTL of the last renewal — inside the 2 × TTL bound. A leader that cannot renew
(the database is away) steps down once its lease could have expired, before another can take it.
A clean shutdown releases the lease at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from datetime import timedelta

from aiotrade.store.leases import Lease, LeaseStore

log = logging.getLogger(__name__)

JOBS_LEASE = "jobs"


def holder_id() -> str:
    """Who this process is, in leases and logs: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    def __init__(self, leases: LeaseStore, name: str, *, holder: str, ttl_s: float) -> None:
        self._leases = leases
        self.name = name
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_s)
        self._lease: Lease | None = None
        self._changed = asyncio.Event()

    def current(self) -> Lease | None:
        """Our lease while we lead (and it cannot have expired yet), else None."""
        lease = self._lease
        if lease is None or lease.held_until - self.ttl.total_seconds() / 10 <= time.monotonic():
            return None
        return lease

    @property
    def is_leader(self) -> bool:
        return self.current() is not None

    async def run(self) -> None:
        """Take, keep or wait for the lease, for as long as the process runs."""
        while True:
            await self.step()
            await asyncio.sleep(self.ttl.total_seconds() / 3)

    async def step(self) -> Lease | None:
        """One attempt to take or renew the lease."""
        was = self._lease is not None
        try:
            self._lease = await self._leases.acquire(self.name, self.holder, self.ttl)
        except Exception as exc:  # the database is away: keep what we have until it could expire
            log.warning("lease %s could not be renewed: %s", self.name, type(exc).__name__)
            if self.current() is None:
                self._lease = None
        if was != (self._lease is not None):
            log.info(
                "%s the lease %s (token %s)",
                "took" if self._lease else "lost",
                self.name,
                self._lease.token if self._lease else "-",
            )
        return self._lease

    async def release(self) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            try:
                await self._leases.release(self.name, self.holder)
            except Exception as exc:
                log.warning("lease %s could not be released: %s", lease.name, type(exc).__name__)
