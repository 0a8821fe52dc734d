"""Documents and suggestions: the versions the document tools (and `POST /api/document`) write.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Written by hand and frozen, as 0001. Only adds tables: a chatstream at 0001 keeps working on a database at
0002 (a rolling deploy).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "chatstream_document",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("created_at", sa.BigInteger(), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_table(
        "chatstream_suggestion",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("document_id", _id(), nullable=False),
        sa.Column("document_created_at", sa.BigInteger(), nullable=False),
        sa.Column("original_text", sa.Text(), nullable=False),
        sa.Column("suggested_text", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_resolved", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("chatstream_suggestion_document", "chatstream_suggestion", ["document_id", "document_created_at"])


def downgrade() -> None:
    op.drop_table("chatstream_suggestion")
    op.drop_table("chatstream_document")
