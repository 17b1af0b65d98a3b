"""What alerts are about: drift events in, rendered messages and delivery outcomes out.

A `DriftEvent` names one tenant agent's drift episode; the router turns it into an incident and an
`AlertMessage` every channel renders, and reports what it did as an `AlertOutcome`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from drift_pipeline.errors import InvalidInputError

Severity = Literal["ERROR", "WARN"]
SEVERITY_RANK: dict[str, int] = {"WARN": 1, "ERROR": 2}

# Episodes of incidents that are not drift findings: their owners close them, a passing drift check never does.
DEPRECATION_EPISODE = "deprecation:"  # a model version's deprecation notice (the deprecation sensor)
CANARY_EPISODE = "canary:"  # an aborted canary (migration/canary_feed.py)


class CheckVerdict(Protocol):
    """What an alert needs of a drift check result (`detection.expectations.DriftCheckResult` is one)."""

    @property
    def tenant_id(self) -> str | None: ...

    @property
    def agent_id(self) -> str | None: ...

    @property
    def severity(self) -> Severity | None: ...

    @property
    def description(self) -> str: ...

    @property
    def report_uri(self) -> str | None: ...

    @property
    def failing_dimensions(self) -> list[str]: ...

    @property
    def threshold(self) -> float: ...

    @property
    def observed_value(self) -> float: ...


@dataclass(frozen=True)
class DriftEvent:
    """A drift finding for one tenant agent. `episode` names the drift episode (candidate + baseline)."""

    tenant_id: str
    agent_id: str
    episode: str
    severity: Severity
    summary: str
    report_uri: str | None = None
    dimensions: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_key(self) -> str:
        """Tenant, agent and episode: all incidents of one episode share it."""
        return f"drift/{self.tenant_id}/{self.agent_id}/{self.episode}"

    @classmethod
    def from_check(cls, result: CheckVerdict, *, episode: str) -> DriftEvent:
        """The event for a failed drift check (`expectations.check_report`); raises when it passed."""
        if result.severity is None or not result.tenant_id or not result.agent_id:
            raise InvalidInputError("only a failed drift check of a named tenant and agent makes an alert")
        return cls(
            tenant_id=result.tenant_id,
            agent_id=result.agent_id,
            episode=episode,
            severity=result.severity,
            summary=result.description,
            report_uri=result.report_uri,
            dimensions=result.failing_dimensions,
            details={"threshold": result.threshold, "observed_value": result.observed_value},
        )


def episode_key(candidate_model_id: str, baseline_id: str) -> str:
    """The conventional episode name: drift of this candidate against this baseline."""
    return f"{candidate_model_id}@{baseline_id}"


@dataclass(frozen=True)
class AlertMessage:
    """What every channel renders: one incident, triggered or resolved."""

    action: Literal["trigger", "resolve"]
    dedup_key: str
    incident_id: int
    tenant_id: str
    agent_id: str
    episode: str
    severity: Severity
    summary: str
    report_uri: str | None
    dimensions: list[str]
    details: dict[str, Any]
    sent_at: str

    @property
    def title(self) -> str:
        # The report's verdict words (detection/wording.py; alerts may not import detection): an ERROR
        # finding is a DRIFT, a WARN one INCONCLUSIVE; a deprecation notice says what it is.
        if self.episode.startswith(DEPRECATION_EPISODE):
            kind = "DEPRECATION"
        else:
            kind = "DRIFT" if self.severity == "ERROR" else "INCONCLUSIVE"
        prefix = "RESOLVED" if self.action == "resolve" else self.severity
        return f"[{prefix}] {kind}: {self.tenant_id}/{self.agent_id} ({self.episode})"

    def to_dict(self) -> dict[str, Any]:
        return {"event": f"drift.{self.action}", **asdict(self)}


@dataclass(frozen=True)
class DeliveryResult:
    """One channel's result for one message."""

    channel: str
    status: Literal["delivered", "failed"]
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class AlertOutcome:
    """What `notify`/`resolve` did: `status` is opened, duplicate, redelivered, escalated, resolved, none or error."""

    status: str
    dedup_key: str | None = None
    incident_id: int | None = None
    deliveries: dict[str, DeliveryResult] = field(default_factory=dict)
    error: str | None = None

    @property
    def delivered(self) -> list[str]:
        return [name for name, d in self.deliveries.items() if d.status == "delivered"]

    @property
    def failed(self) -> list[str]:
        return [name for name, d in self.deliveries.items() if d.status == "failed"]
