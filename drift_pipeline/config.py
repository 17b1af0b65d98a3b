"""Every setting drift-pipeline reads from the environment, in one typed object (pydantic-settings).

Each field is the variable ``DRIFT_PIPELINE_<FIELD>`` (``home`` is ``DRIFT_PIPELINE_HOME``); the table in
docs/operations.md lists them. Code asks `Settings.from_env()` and never reads ``os.environ`` for these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from drift_pipeline.errors import InvalidInputError

DEFAULT_HOME = ".drift-pipeline"


class Settings(BaseSettings):
    """Resolved settings. `database_url` and `storage_url` default to files under `home`."""

    model_config = SettingsConfigDict(env_prefix="DRIFT_PIPELINE_", frozen=True, extra="ignore")

    # Where things live.
    home: Path = Field(Path(DEFAULT_HOME), description="Home folder: embedded SQLite store, local objects, configs.")
    database_url: str = Field("", description="SQLAlchemy URL of the store.")
    storage_url: str = Field("", description="Object storage root: a folder or s3://bucket/prefix.")
    storage_options: dict[str, Any] = Field(default_factory=dict, description="fsspec options as JSON.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    model_cache: Path | None = Field(None, description="Converted offline-model weights.")
    # Who acts, and where the operator's configs are.
    actor: str | None = Field(None, description="Actor recorded in the audit log for CLI commands.")
    audit_signing_key: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs audit checkpoints; keep it off the store's hosts."
    )
    alerts_config: Path | None = Field(None, description="Alert channels YAML.")
    providers_config: Path | None = Field(None, description="Provider sources YAML.")
    # Dagster wiring.
    shard_tenants: int = Field(
        50, ge=1, description="Tenant partitions per scheduled run (one run, and one process, per shard)."
    )
    discovery_interval_s: int = Field(3600, ge=30, description="New-model-version sensor interval.")
    probe_interval_s: int = Field(900, ge=30, description="Silent-change probe sensor interval.")
    probe_hosted: bool = Field(False, description="Also probe hosted (paid) providers, not only self-hosted ones.")
    deprecation_notice_days: int = Field(30, ge=1, description="Days before a sunset that tenants are told.")
    deprecation_batch: int = Field(500, ge=1, description="Deprecation notices per sensor tick.")
    # Alerts: where tenant-configured URLs may point (see docs/alerts.md).
    alert_allowed_hosts: str = Field(
        "hooks.slack.com,events.pagerduty.com,events.eu.pagerduty.com",
        description="Hosts or domains (comma-separated; `*` for any) tenant alert URLs may name.",
    )
    alert_allow_private_networks: bool = Field(
        False, description="Let alert URLs reach loopback, private and link-local addresses (local receivers)."
    )
    # Links to drift reports in the Dagster UI (persistence/report_links.py).
    report_base_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="http(s) URL that serves the object store's reports/ prefix (`drift-pipeline reports serve`).",
    )
    report_link_expiry_s: int = Field(
        604800, ge=60, le=604800, description="Lifetime of presigned S3 report links (S3 allows at most 7 days)."
    )
    # Detection.
    replay_pairs: int | None = Field(None, ge=1, description="Baseline prompts the nightly replay uses first.")
    replay_concurrency: dict[str, int] = Field(
        default_factory=dict, description='Requests in flight per provider, as JSON, e.g. {"openai": 64}.'
    )
    replay_transport: Literal["auto", "direct", "litellm"] = Field(
        "auto", description="How replays reach OpenAI-compatible api_base servers: auto, direct or litellm."
    )
    top_up_pairs: int | None = Field(
        None, ge=1, description="Prompts an inconclusive comparison may be topped up to (needs REPLAY_PAIRS)."
    )
    # Embeddings (docs/scoring.md, "Embedding backends" and "The embedding store").
    embedding_backend: str = Field(
        "auto",
        description="`auto` (`openvino-bf16` on CPUs with bf16 units, else `openvino`), `local` (in-process MiniLM, the fp32 reference), `openvino`, `openvino-bf16`, `onnx`, `onnx-int8`, `torch-bf16` or `openai-compatible`.",
    )
    embedding_model: str | None = Field(
        None, max_length=200, description="Model name the embedding server serves (remote backends)."
    )
    embedding_url: str | None = Field(None, description="Base URL of an OpenAI-compatible `/v1/embeddings` server.")
    embedding_api_key: SecretStr | None = Field(None, description="Bearer key for the embedding server; never logged.")
    embedding_dimensions: int | None = Field(
        None, ge=1, le=65536, description="Vector length the remote model must return (checked on every answer)."
    )
    embedding_batch_size: int = Field(32, ge=1, le=4096, description="Texts per encoder call (remote: per request).")
    embedding_store: bool = Field(
        True, description="Keep vectors in the content-addressed store under STORAGE_URL (embed once per deployment)."
    )
    # The offline model.
    llm_threads: int | None = Field(None, ge=1, description="Torch threads for the offline model's generation.")

    @field_validator("embedding_backend")
    @classmethod
    def _backend_name(cls, value: str) -> str:
        # fullmatch, not `$`: a name is a cache-key component and must not end in a newline.
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", value):
            raise ValueError("a lowercase backend name (letters, digits and '-', at most 32)")
        return value

    @model_validator(mode="after")
    def _defaults_under_home(self) -> Settings:
        home = self.home.expanduser().resolve()
        object.__setattr__(self, "home", home)
        object.__setattr__(
            self, "database_url", normalise_database_url(self.database_url or f"sqlite:///{home / 'drift.db'}")
        )
        object.__setattr__(self, "storage_url", self.storage_url or str(home / "data"))
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment now (settings are not cached: tests and the demo change them per process)."""
        try:
            return cls()
        except SettingsError as exc:  # a complex field (JSON) that does not parse
            field = re.search(r'field "(\w+)"', str(exc))
            name = f"DRIFT_PIPELINE_{field.group(1).upper()}" if field else "a DRIFT_PIPELINE_ variable"
            raise InvalidInputError(f"{name}: not valid JSON") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "DRIFT_PIPELINE_" + str(first["loc"][0]).upper() if first["loc"] else "a DRIFT_PIPELINE_ variable"
            raise InvalidInputError(f"{name}: {first['msg']}") from None


def normalise_database_url(url: str) -> str:
    """Pin the Postgres driver to psycopg2: SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url
