"""API keys and WebSocket tickets in the shared database: every replica sees the same keys.

Only SHA-256 digests are stored, never a key or a ticket. Keys are revoked, never deleted (their ids stay
meaningful in audit rows and in caller-scoped idempotency keys). A ticket is taken by one DELETE, so it is
used once across replicas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiotrade.store.tables import ApiKeyRow, IdempotencyKeyRow, RebalanceRow, WsTicketRow

KEY_ID_LENGTH = 12
_KEY_ID = re.compile(rf"[0-9a-f]{{{KEY_ID_LENGTH}}}")


class KeyNameTaken(Exception):
    """An active key already has this name."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    accounts: tuple[str, ...]
    rate_limit: float
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key about to be stored: its digest, never the key."""

    key_id: str
    digest: str
    name: str
    scopes: Sequence[str]
    accounts: Sequence[str]
    rate_limit: float
    created_by: str | None


@dataclass(frozen=True, slots=True)
class StoredTicket:
    key_id: str
    scopes: tuple[str, ...]
    accounts: tuple[str, ...]


class ApiKeyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ----- keys ------------------------------------------------------------------------------------

    async def add(self, key: NewKey, *, replace_active: bool = False) -> StoredKey:
        """Store a new key; with ``replace_active``, the active key of the same name is revoked in the same
        transaction. Raises KeyNameTaken when an active key has the name (and is not to be replaced)."""
        try:
            async with self._sessions.begin() as session:
                if replace_active:
                    await _revoke_named(session, key.name)
                row = _row(key)
                session.add(row)
            return _stored(row)
        except IntegrityError:
            raise KeyNameTaken(key.name) from None

    async def ensure(self, key: NewKey) -> bool:
        """Store ``key`` unless its digest is already stored (revoked or not: a revoked bootstrap key stays
        revoked); an active key of the same name with another digest is revoked. Idempotent and safe when
        every replica does it at once. True when this call stored it."""
        async with self._sessions.begin() as session:
            if await session.scalar(select(ApiKeyRow.key_id).where(ApiKeyRow.digest == key.digest)) is not None:
                return False
            await _revoke_named(session, key.name, keep_digest=key.digest)  # not the one a replica just stored
            insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            values = {c: getattr(_row(key), c) for c in _COLUMNS}
            result = await session.execute(insert(ApiKeyRow).values(**values).on_conflict_do_nothing())
            return bool(result.rowcount)

    async def by_digest(self, digest: str) -> StoredKey | None:
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.digest == digest))
        return _stored(row) if row is not None else None

    async def by_id(self, key_id: str) -> StoredKey | None:
        async with self._sessions() as session:
            row = await session.get(ApiKeyRow, key_id)
        return _stored(row) if row is not None else None

    async def list(self) -> list[StoredKey]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id))).all()
        return [_stored(r) for r in rows]

    async def revoke(self, name: str, *, key_id: str | None = None) -> StoredKey | None:
        """Revoke the active key named ``name`` (and with id ``key_id``, if given); None when there is none."""
        query = select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
        if key_id is not None:
            query = query.where(ApiKeyRow.key_id == key_id)
        async with self._sessions.begin() as session:
            row = await session.scalar(query.with_for_update())
            if row is None:
                return None
            row.revoked_at = datetime.now(UTC)
        return _stored(row)

    async def count_active(self) -> int:
        async with self._sessions() as session:
            return int(
                await session.scalar(select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
                or 0
            )

    # ----- WebSocket tickets -----------------------------------------------------------------------

    async def add_ticket(self, digest: str, ticket: StoredTicket, *, expires_at: datetime) -> None:
        """Store a ticket (its digest); expired ones are swept on the way."""
        async with self._sessions.begin() as session:
            await session.execute(delete(WsTicketRow).where(WsTicketRow.expires_at <= datetime.now(UTC)))
            session.add(
                WsTicketRow(
                    digest=digest,
                    key_id=ticket.key_id,
                    scopes=list(ticket.scopes),
                    accounts=list(ticket.accounts),
                    expires_at=expires_at,
                )
            )

    async def take_ticket(self, digest: str) -> StoredTicket | None:
        """The ticket, removed in the same statement: of any number of replicas trying, one gets it."""
        statement = (
            delete(WsTicketRow)
            .where(WsTicketRow.digest == digest, WsTicketRow.expires_at > datetime.now(UTC))
            .returning(WsTicketRow.key_id, WsTicketRow.scopes, WsTicketRow.accounts)
        )
        async with self._sessions.begin() as session:
            taken = (await session.execute(statement)).first()
        if taken is None:
            return None
        return StoredTicket(taken.key_id, tuple(taken.scopes), tuple(taken.accounts))

    # ----- idempotency keys stored before they were scoped by caller -------------------------------

    async def unscoped_idempotency_key(self, account: str, key: str) -> bool:
        """Whether ``key`` is stored for ``account`` as given, unscoped: written before idempotency keys were
        scoped by caller (or by a replica that predates it), not another caller's scoped key."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(IdempotencyKeyRow.key).where(IdempotencyKeyRow.account == account, IdempotencyKeyRow.key == key)
            )
            return found is not None and not await _names_a_key(session, key)

    async def unscoped_plan(self, account: str, plan_id: str) -> bool:
        """Whether a rebalance plan of ``account`` has this id unscoped (derived from the plan, or named by a
        header before headers were scoped by caller)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(RebalanceRow.id).where(RebalanceRow.account == account, RebalanceRow.plan_id == plan_id).limit(1)
            )
            return found is not None and not await _names_a_key(session, plan_id)


_COLUMNS = ("key_id", "digest", "name", "scopes", "accounts", "rate_limit", "created_at", "created_by", "revoked_at")


def _row(key: NewKey) -> ApiKeyRow:
    return ApiKeyRow(
        key_id=key.key_id,
        digest=key.digest,
        name=key.name,
        scopes=sorted(set(key.scopes)),
        accounts=sorted(set(key.accounts)),
        rate_limit=float(key.rate_limit),
        created_at=datetime.now(UTC),
        created_by=key.created_by,
        revoked_at=None,
    )


def _stored(row: ApiKeyRow) -> StoredKey:
    return StoredKey(
        key_id=row.key_id,
        name=row.name,
        scopes=tuple(row.scopes),
        accounts=tuple(row.accounts),
        rate_limit=row.rate_limit,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


async def _revoke_named(session: AsyncSession, name: str, *, keep_digest: str | None = None) -> None:
    where = [ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None)]
    if keep_digest is not None:
        where.append(ApiKeyRow.digest != keep_digest)
    await session.execute(update(ApiKeyRow).where(*where).values(revoked_at=datetime.now(UTC)))


async def _names_a_key(session: AsyncSession, scoped: str) -> bool:
    """Whether ``scoped`` starts with the id of one of our keys and a colon (a caller-scoped key)."""
    prefix, colon, _ = scoped.partition(":")
    if not colon or not _KEY_ID.fullmatch(prefix):
        return False
    return await session.get(ApiKeyRow, prefix) is not None
