"""The first schema: conversations, messages, votes, suspended runs, preferences.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

Written by hand and frozen: the column types are spelled out here, not taken from `schema.py`, so that a
later change there cannot rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")


def _doc() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(postgresql.JSON(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "chatstream_chat",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("record", _doc(), nullable=False),
    )
    op.create_index("chatstream_chat_user_recent", "chatstream_chat", ["user_id", "updated_at", "id"])
    op.create_index(
        "chatstream_chat_user_channel_recent", "chatstream_chat", ["user_id", "channel", "updated_at", "id"]
    )
    op.create_index(
        "chatstream_chat_user_visibility_recent", "chatstream_chat", ["user_id", "visibility", "updated_at", "id"]
    )
    op.create_index(
        "chatstream_chat_user_channel_visibility_recent",
        "chatstream_chat",
        ["user_id", "channel", "visibility", "updated_at", "id"],
    )
    op.create_table(
        "chatstream_message",
        sa.Column("chat_id", _id(), sa.ForeignKey("chatstream_chat.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("id", _id(), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("run_id", _id(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("record", _doc(), nullable=False),
        sa.UniqueConstraint("chat_id", "position", name="chatstream_message_chat_position"),
    )
    op.create_table(
        "chatstream_vote",
        sa.Column("chat_id", _id(), primary_key=True),
        sa.Column("message_id", _id(), primary_key=True),
        sa.Column("is_upvoted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id", "message_id"],
            ["chatstream_message.chat_id", "chatstream_message.id"],
            ondelete="CASCADE",
            name="chatstream_vote_message",
        ),
    )
    op.create_table(
        "chatstream_suspended_run",
        sa.Column("run_id", _id(), primary_key=True),
        sa.Column("chat_id", _id(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("record", _doc(), nullable=False),
    )
    op.create_index("chatstream_suspended_run_chat", "chatstream_suspended_run", ["chat_id"])
    op.create_index("chatstream_suspended_run_expires", "chatstream_suspended_run", ["expires_at"])
    op.create_table(
        "chatstream_preferences",
        sa.Column("user_id", sa.Text(), primary_key=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("record", _doc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chatstream_preferences")
    op.drop_table("chatstream_suspended_run")
    op.drop_table("chatstream_vote")
    op.drop_table("chatstream_message")
    op.drop_table("chatstream_chat")
