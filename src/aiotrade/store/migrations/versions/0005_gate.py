"""gate: orders.placed_at and indexes, audit request and key ids, equity buckets and peaks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reference_price", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_orders_account_status", ["account", "status"], unique=False)
        batch_op.create_index("ix_orders_account_placed", ["account", "placed_at"], unique=False)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("equity_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bucket", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_equity_account_bucket", ["account", "bucket"])
    op.create_table(
        "equity_peaks",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("quote", sa.String(length=16), nullable=False),
        sa.Column("peak", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "quote"),
    )
    # Peaks of the history recorded so far (Decimal text does not order in SQL: one pass here).
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT account, quote, equity, at FROM equity_history")).fetchall()
    peaks: dict[tuple[str, str], tuple[str, object]] = {}
    for account, quote, equity, at in rows:
        key = (account, quote)
        if key not in peaks or Decimal(equity) > Decimal(peaks[key][0]):
            peaks[key] = (equity, at)
    for (account, quote), (equity, at) in peaks.items():
        connection.execute(
            sa.text("INSERT INTO equity_peaks (account, quote, peak, at) VALUES (:a, :q, :p, :t)"),
            {"a": account, "q": quote, "p": equity, "t": at},
        )


def downgrade() -> None:
    op.drop_table("equity_peaks")
    with op.batch_alter_table("equity_history", schema=None) as batch_op:
        batch_op.drop_constraint("uq_equity_account_bucket", type_="unique")
        batch_op.drop_column("bucket")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("api_key_id")
        batch_op.drop_column("request_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_account_placed")
        batch_op.drop_index("ix_orders_account_status")
        batch_op.drop_column("reference_price")
        batch_op.drop_column("placed_at")
