"""Persistence: where everything is kept, and nothing else.

Owns the SQL store (`db`: SQLAlchemy engine and sessions on SQLite or PostgreSQL, migrated by Alembic
under `alembic/`), its tables (`tables`), object storage for traffic, samples and reports (`objects`:
fsspec on a folder or S3, atomic batches behind commit markers) and the tamper-evident audit log
(`audit`). May import only the top-level `config`, `errors`, `identifiers` and `retry`: every other
pillar builds on it.
"""
