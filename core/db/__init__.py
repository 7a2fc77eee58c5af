"""Persistence: SQLAlchemy 2 models, session factories and repositories (queries only)."""
