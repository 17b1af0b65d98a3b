"""Latest verdicts across tenants: each tenant agent's newest verdict on its pinned model, attention first.

"Did any tenant drift last night?" is asked across tenants, while a drift report is one tenant's. The
answer is read back from the stored reports (`persistence/reports.py`), so it is the same whichever tenant
materialized last and survives restarts. It is bounded for fleets of thousands of tenants: only reports
of the last `window` are read, only UNVERIFIED, DRIFT and INCONCLUSIVE rows are listed (worst first, at most
`limit`), and the rest are counted.

An insider who edits a stored report must not turn last night's DRIFT into EQUIVALENT here while the gates,
which verify, still refuse it: every report read gets the gates' checks (its body against its stored hash
and the hash the audit log recorded, its subject), in one bulk query, and one that fails or cannot be
read is listed as UNVERIFIED with the reason instead of its claimed verdict.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from drift_pipeline.detection import wording
from drift_pipeline.detection.report import PINNED
from drift_pipeline.errors import DriftPipelineError, InvalidInputError
from drift_pipeline.persistence import reports
from drift_pipeline.persistence.db import Store

log = logging.getLogger(__name__)

UNVERIFIED = "UNVERIFIED"  # a stored report that does not match its hash, or that cannot be read
ATTENTION = (UNVERIFIED, wording.DRIFT, wording.INCONCLUSIVE)  # worst first
DEFAULT_WINDOW = timedelta(hours=36)  # last night, with room for a nightly run that started late
DEFAULT_LIMIT = 20
WHY_FIGURES = 2  # drifted dimensions named per row


@dataclass(frozen=True)
class AgentStatus:
    """One tenant agent's latest verdict on its pinned model, with why in people's words."""

    tenant_id: str
    agent_id: str
    model_id: str
    verdict: str  # UNVERIFIED | DRIFT | INCONCLUSIVE | EQUIVALENT
    why: str
    html_uri: str | None
    created_at: datetime


@dataclass(frozen=True)
class LatestVerdicts:
    since: datetime
    counts: Counter[str]  # verdict -> tenant agents
    attention: list[AgentStatus]  # UNVERIFIED, DRIFT, then INCONCLUSIVE, at most `limit`
    more: int  # attention rows left out by the limit

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summary(
    store: Store, *, now: datetime, window: timedelta = DEFAULT_WINDOW, limit: int = DEFAULT_LIMIT
) -> LatestVerdicts:
    """The latest pinned-model verdict of every tenant agent reported since `now - window`."""
    since = now - window
    found = [
        info
        for info in reports.latest_per_subject(store, kind="drift", since=since)
        # A report without a role predates roles, when only the pinned model was replayed nightly.
        if info.body.get("role", PINNED) == PINNED
    ]
    audited = reports.recorded_hashes(store, [info.report_id for info in found])
    # A tenant agent replayed twice in the window (a sensor replay after the nightly): its newest report.
    newest: dict[tuple[str, str], AgentStatus] = {}
    for info in sorted(found, key=lambda i: i.created_at):
        newest[(info.tenant_id, info.agent_id)] = _status(info, audited.get(info.report_id))
    rows = list(newest.values())
    flagged = sorted(
        (r for r in rows if r.verdict in ATTENTION), key=lambda r: (ATTENTION.index(r.verdict), r.tenant_id, r.agent_id)
    )
    return LatestVerdicts(since, Counter(r.verdict for r in rows), flagged[:limit], max(0, len(flagged) - limit))


def _status(info: reports.ReportInfo, audited_sha256: str | None) -> AgentStatus:
    """The report's verdict and why after the gates' checks (`reports.verify`, in bulk); UNVERIFIED with the
    reason when its body is not the one the audit log recorded or not a drift report's shape (an edited row
    must not raise inside the divergence step either)."""
    body = info.body
    try:
        reports.check_integrity(info, audited_sha256)
        reports.check_subject(body, info.tenant_id, info.agent_id, info.model_id)
        verdict = str(body.get("verdict") or ("drift" if body.get("drift_detected") else "inconclusive")).upper()
        if verdict not in wording.VERDICTS:
            raise InvalidInputError(f"the stored report has no known verdict ({verdict[:40]!r})")
        reason, html_uri = why(body), body.get("html_uri")
    except (DriftPipelineError, AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("report %s of %s/%s is unverified: %s", info.report_id, info.tenant_id, info.agent_id, exc)
        verdict, reason, html_uri = UNVERIFIED, _reason(exc), None
    html = html_uri if isinstance(html_uri, str) else None
    return AgentStatus(info.tenant_id, info.agent_id, info.model_id, verdict, reason, html, info.created_at)


def _reason(exc: Exception) -> str:
    if isinstance(exc, DriftPipelineError):
        return str(exc)
    return f"the stored report is malformed ({type(exc).__name__})"


def why(body: dict) -> str:
    """The drifted dimensions' figures; for an inconclusive report, what it lacks (e.g. pairs)."""
    threshold = float(body.get("threshold") or 0)
    dims = body.get("dimensions") or []
    drifted = [d for d in dims if d.get("drifted") and d.get("effect") is not None]
    if drifted:
        # The largest changes first, and few of them: the report has the rest.
        drifted.sort(key=lambda d: -abs(float(d["effect"])))
        shown = "; ".join(
            wording.figure(d["name"], float(d["effect"]), threshold, d.get("p_adjusted")) for d in drifted[:WHY_FIGURES]
        )
        return shown + (f"; and {len(drifted) - WHY_FIGURES} more" if len(drifted) > WHY_FIGURES else "")
    if (body.get("distribution") or {}).get("drift"):
        return "the distribution of answers shifted"
    undecided = [d["name"] for d in dims if d.get("verdict") == "inconclusive"]
    if str(body.get("verdict")) == "inconclusive" and undecided:
        needed = body.get("pairs_needed")
        tail = f" ({needed} pairs needed)" if needed else ""
        return f"not decided: {', '.join(undecided)}{tail}"
    return ""
