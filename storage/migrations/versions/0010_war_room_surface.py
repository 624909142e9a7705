"""The war room's topic and bookmarks as IMAS last wrote them (a refresh writes only what
changed instead of re-setting the topic and re-reading bookmarks on every event).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("war_room_topic", sa.String(length=250), nullable=True))
        batch.add_column(sa.Column("war_room_bookmarks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("war_room_bookmarks")
        batch.drop_column("war_room_topic")
