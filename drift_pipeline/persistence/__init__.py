"""Persistence: where everything is kept, and nothing else.

Owns the SQL store (`db`: SQLAlchemy engine and sessions on SQLite or PostgreSQL, migrated by Alembic
under `alembic/`), its tables (`tables`), object storage for traffic, samples and reports (`objects`:
fsspec on a folder or S3, atomic batches behind commit markers) and the tamper-evident audit log
(`audit`: hash chain and per-tenant sub-chains; `merkle`: RFC 9162 tree and proofs; `checkpoints`: signed
tree heads in the store and write-once objects; `audit_verify`; `audit_proofs`: per-tenant bundles;
`append_only`: the triggers). May import only the top-level `config`, `errors`, `identifiers` and `retry`: every other
pillar builds on it.
"""
