"""Index alerts.incident_key: every webhook delivery looks up the open incident of its
alert group by that key.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_incident_key", "alerts", ["incident_key"])


def downgrade() -> None:
    op.drop_index("ix_alerts_incident_key", table_name="alerts")
