"""Persistence: SQLAlchemy 2 models, engine/session, query functions, Alembic migrations."""
