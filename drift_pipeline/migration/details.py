"""What a migration row's `details` JSON holds, as a typed model (the shape stored in `migrations.details`).

Every key is optional because each step of the state machine adds its own: the proposal (`proposed_by`,
`reason`, `forced`, `transitions`), staging (`staging` or `staging_error`), the review, the canary
(`share_history`, `monitor`, `breach`), the promotion (`promoted_revision`, `baseline_id`) and report files
attached from outside (`attachments`, never relied on).

Stored with `exclude_unset`, so a key that a step never set stays absent, exactly as in rows written
before the model existed; unknown keys are kept (`extra="allow"`). Timestamps stay ISO 8601 strings:
pydantic would write UTC as `Z` and change what readers of the stored JSON compare.
Change details only inside `edit_details` and by assignment (`d.x = ...`, never `d.x.append(...)`):
assignment is validated and marks the field as set, and the block stores a new dict, which is what
SQLAlchemy needs to see the JSON column changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drift_pipeline.persistence.tables import Migration


class _Stored(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=True, populate_by_name=True)


class Transition(_Stored):
    """One step of the state machine, as the row records it (the audit log has the same step)."""

    from_state: str = Field(alias="from")
    to: str
    at: str
    by: str
    reason: str


class StagingCheck(_Stored):
    name: str
    passed: bool


class StagingAssessment(_Stored):
    """The staging replay's verdict; `report` is the drift report with its examples trimmed."""

    report: dict[str, Any]
    checks: list[StagingCheck]
    passed: bool
    verdict: str  # "pass" | "fail"
    ran_at: str
    report_id: str | None = None  # the stored report (`persistence.reports`) the assessment rests on
    report_sha256: str | None = None


class Review(_Stored):
    reviewer: str
    decision: str  # "approved" | "rejected"
    reason: str
    at: str
    report_sha256: str | None = None  # the staging report the decision was taken on
    key_id: str | None = None  # the reviewer's registered key (None: the automatic gate)
    approval: dict[str, Any] | None = None  # the signed statement, kept verbatim for the evidence
    approval_sha256: str | None = None


class ShareStep(_Stored):
    """From `since` on, `share` of the sessions go to the candidate (the runtime routes by this history)."""

    since: str
    share: float


class CanaryMonitor(_Stored):
    """Cumulative outcome counts of both slices and the latest always-valid test results."""

    counts: dict[str, dict[str, list[int]]]  # dimension -> {"canary"|"pinned": [events, n]}
    looks: int
    alpha: float
    last: list[dict[str, Any]]


class Breach(_Stored):
    dimensions: list[dict[str, Any]]
    look: int
    at: str


class MigrationDetails(_Stored):
    proposed_by: str | None = None
    reason: str | None = None
    forced: bool | None = None
    transitions: list[Transition] = Field(default_factory=list)
    staging_error: str | None = None
    staging: StagingAssessment | None = None
    review: Review | None = None
    share_history: list[ShareStep] = Field(default_factory=list)
    monitor: CanaryMonitor | None = None
    breach: Breach | None = None
    promoted_revision: int | None = None
    baseline_id: str | None = None
    # Report files handed in from outside: shown to reviewers, marked `external, unverified`, never relied on.
    attachments: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> MigrationDetails:
        return cls.model_validate(dict(data or {}))

    def dump(self) -> dict[str, Any]:
        """The JSON to store: only keys that were set, with their stored names (`from`)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


@contextmanager
def edit_details(row: Migration) -> Iterator[MigrationDetails]:
    """The row's details to change by assignment; stored back on the row when the block ends without error."""
    details = MigrationDetails.load(row.details)
    yield details
    row.details = details.dump()
