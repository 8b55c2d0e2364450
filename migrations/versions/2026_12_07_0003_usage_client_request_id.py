"""usage records keep the client's request id

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("client_request_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_usage_records_account_id_client_request_id",
        "usage_records",
        ["account_id", "client_request_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_usage_records_account_id_client_request_id", table_name="usage_records")
    # SQLite drops a column by copying the table (batch mode); PostgreSQL alters it in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("client_request_id")
