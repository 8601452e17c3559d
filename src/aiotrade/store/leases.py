"""Leases and interval claims in the shared database: what must happen once across replicas.

A lease (`leases` row) has one holder at a time until it expires; each new holder gets a larger fencing
token, so work done under an older token can be told apart. An interval claim (`job_runs` row, keyed by
job and interval number) can be taken once, ever: whichever replica holds the lease when an interval
comes round, that interval's work runs once.
Both are single statements that the database arbitrates (a conditional UPDATE, a primary key), the same
on SQLite and PostgreSQL. A lease's times are the database server's clock on PostgreSQL, so replicas whose
clocks disagree (by more than the TTL, even) still agree on when a lease expires; SQLite is one machine's
file, and its clock is that machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.tables import JobRunRow, LeaseRow


async def _now(session: AsyncSession) -> datetime:
    """The time leases are judged by: the PostgreSQL server's (one clock for every replica), else ours."""
    if session.bind.dialect.name == "postgresql":
        return (await session.scalar(select(func.clock_timestamp()))).astimezone(UTC)
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    token: int
    expires_at: datetime  # the database's time (see the module docstring)
    # This process's `time.monotonic()` until which it may count on the lease: the TTL from before the
    # statement that took or renewed it, so neither the round trip nor our own clock's offset can stretch it.
    held_until: float
    # The database's time when it was read, and our `time.monotonic()` just after: a clock to number job
    # intervals by (a wait for a pooled connection before the read does not move it).
    read_at: datetime
    read_at_monotonic: float

    def database_time(self) -> datetime:
        """The database's time now, as this lease tells it (its time when read, plus our monotonic time
        since): what every replica numbers job intervals by, whatever its own clock says."""
        return self.read_at + timedelta(seconds=time.monotonic() - self.read_at_monotonic)


class LeaseStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def acquire(self, name: str, holder: str, ttl: timedelta) -> Lease | None:
        """Take or renew the lease ``name`` for ``holder``: the lease if it is now ours, None if another
        holder's lease has not expired. Taking it over (or for the first time) raises the fencing token."""
        asked = time.monotonic()
        held_until = asked + ttl.total_seconds()
        async with self._sessions.begin() as session:
            now = await _now(session)
            clock = (now, time.monotonic())
            renewed = await session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.expires_at > now)
                .values(expires_at=now + ttl)
                .returning(LeaseRow.token)
            )
            token = renewed.scalar_one_or_none()
            if token is not None:
                return Lease(name, holder, token, now + ttl, held_until, *clock)
            taken = await session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, or_(LeaseRow.expires_at <= now, LeaseRow.holder == holder))
                .values(holder=holder, token=LeaseRow.token + 1, expires_at=now + ttl)
                .returning(LeaseRow.token)
            )
            token = taken.scalar_one_or_none()
            if token is not None:
                return Lease(name, holder, token, now + ttl, held_until, *clock)
        try:
            async with self._sessions.begin() as session:
                session.add(LeaseRow(name=name, holder=holder, token=1, expires_at=now + ttl))
        except IntegrityError:
            return None  # someone else holds it (or took it a moment ago)
        return Lease(name, holder, 1, now + ttl, held_until, *clock)

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean shutdown), so another replica need not wait for it to expire."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(expires_at=await _now(session))
            )

    async def holder(self, name: str) -> Lease | None:
        asked = time.monotonic()
        async with self._sessions() as session:
            row = await session.get(LeaseRow, name)
            now = await _now(session)
            read = time.monotonic()
        if row is None or row.expires_at <= now:
            return None
        held_until = asked + (row.expires_at - now).total_seconds()
        return Lease(row.name, row.holder, row.token, row.expires_at, held_until, now, read)

    async def claim_interval(self, job: str, interval: int, holder: str, token: int) -> bool:
        """Claim interval number ``interval`` of ``job``; False if it was claimed before, by anyone."""
        try:
            async with self._sessions.begin() as session:
                session.add(JobRunRow(job=job, interval=interval, holder=holder, token=token, at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True

    async def runs(self, job: str) -> list[tuple[int, str, int]]:
        """(interval, holder, token) of every claimed interval of ``job``, in order."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(JobRunRow.interval, JobRunRow.holder, JobRunRow.token)
                .where(JobRunRow.job == job)
                .order_by(JobRunRow.interval)
            )
        return [(i, h, t) for i, h, t in rows.all()]

    async def forget_runs_before(self, before: datetime) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(delete(JobRunRow).where(JobRunRow.at < before))
        return result.rowcount or 0
