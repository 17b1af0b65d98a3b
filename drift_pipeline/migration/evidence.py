"""Equivalence evidence for a compliance file: is the model on this tenant's data today behaviourally
equivalent to the one validated then?

One JSON document (and its HTML rendering) gathers what an auditor needs to answer that: the manifest in
force then and now, the behavioural baseline, the latest replay's drift report with every test and its
confidence interval, the version history (manifest revisions and alias periods), the migrations and the
audit trail since the date, with the audit chain verified.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from drift_pipeline import files
from drift_pipeline.detection import verdicts
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.migration import states
from drift_pipeline.persistence import audit, reports
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import AliasResolution, Baseline
from drift_pipeline.versioning import manifests, registry

SCHEMA_VERSION = "1.2"
MAX_REPORT_AGE = timedelta(days=2)  # the nightly replay runs daily: older evidence is not today's


def build(
    store: Store,
    tenant_id: str,
    agent_id: str,
    since: datetime,
    *,
    report_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    objects: ObjectStore | None = None,
    max_age: timedelta = MAX_REPORT_AGE,
) -> dict[str, Any]:
    """Assemble the evidence. The answer rests only on a report the system stored (`report_id`, else the
    newest stored drift report of the pinned model), verified on use (hash, audit entry, object copy);
    only a current, equivalent one answers `equivalent` (docs/scoring.md, "Verdicts"). `attachments` (files
    from outside, `reports.external_attachment`) are shown, marked `external, unverified`, never relied on."""
    history = manifests.history(store, tenant_id, agent_id)
    current = history[-1]
    validated = next((m for m in reversed(history) if _utc(m.created_at) <= since), history[0])
    stored = _stored_report(store, tenant_id, agent_id, current.pinned_model_id, report_id, objects)
    report = stored.body if stored else None
    if report is not None:
        _check_report(report)
    now = audit.utcnow()
    chain = audit.verify(store)
    return {
        "schema_version": SCHEMA_VERSION,
        "question": (
            f"Is the model serving {tenant_id}/{agent_id} today behaviourally equivalent to the one validated "
            f"on {since.date().isoformat()}?"
        ),
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "since": since.isoformat(),
        "generated_at": audit.utcnow().isoformat(),
        "answer": _answer(report, validated, current, now=now, max_age=max_age),
        "validated": _revision(validated),
        "current": _revision(current),
        "baseline": _baseline(store, current.behavioral_baseline_id),
        "drift_report": report,
        "drift_report_ref": stored.reference() if stored else None,
        "attachments": list(attachments or []),
        "tests": [_test(d) for d in (report or {}).get("dimensions", [])],
        "version_history": {
            "manifest_revisions": [_revision(m) for m in history],
            "aliases": _alias_history(store, {m.pinned_model_id for m in history}),
        },
        "migrations": [_migration(m) for m in states.list_migrations(store, tenant_id, agent_id)],
        "audit_trail": audit.entries(store, tenant_id=tenant_id, since=since),
        "audit_chain": {
            "ok": chain.ok,
            "checked": chain.checked,
            "first_bad_seq": chain.first_bad_seq,
            "problem": chain.problem,
        },
    }


def _stored_report(
    store: Store, tenant_id: str, agent_id: str, pinned: str, report_id: str | None, objects: ObjectStore | None
) -> reports.ReportInfo | None:
    """The stored report the answer rests on, verified; another tenant's, agent's or model's is refused."""
    if report_id is None:
        found = reports.latest(store, tenant_id, agent_id, pinned, kind="drift")
        if found is None:
            return None
        report_id = found.report_id
    return reports.verify(store, report_id, tenant_id=tenant_id, agent_id=agent_id, model_id=pinned, objects=objects)


def write_json(evidence: dict[str, Any], path: Path) -> None:
    files.write_private(path, json.dumps(evidence, indent=2, sort_keys=True, default=str).encode("utf-8"))


def write_html(evidence: dict[str, Any], path: Path) -> None:
    files.write_private(path, render_html(evidence).encode("utf-8"))


def render_html(evidence: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets) for a compliance file."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    env.filters["tojson"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    return env.from_string(_TEMPLATE).render(e=evidence)


# ------------------------------------------------------------------------------------------- internals


def _answer(
    report: dict[str, Any] | None,
    validated: manifests.Manifest,
    current: manifests.Manifest,
    *,
    now: datetime,
    max_age: timedelta,
) -> dict[str, Any]:
    """`equivalent` only on an equivalent, current report for the pinned model; else what is missing."""
    notes = []
    if validated.pinned_model_id != current.pinned_model_id:
        notes.append(
            f"the pin changed since then: {validated.pinned_model_id} (revision {validated.revision}) -> "
            f"{current.pinned_model_id} (revision {current.revision})"
        )

    def answer(verdict: str, summary: str, **extra: Any) -> dict[str, Any]:
        return {"verdict": verdict, "summary": summary, "notes": notes, **extra}

    if report is None:
        return answer("inconclusive", "no drift report of the pinned model is stored: run the nightly replay")
    meta = {"report_generated_at": report.get("generated_at"), "report_uri": report.get("report_uri")}
    generated = _parse_time(report.get("generated_at"))
    if generated is not None:
        meta["report_age_hours"] = round((now - generated).total_seconds() / 3600, 1)
    if report.get("candidate") != current.pinned_model_id:
        return answer(
            "inconclusive",
            f"the report is about {report.get('candidate')!r}, not the pinned {current.pinned_model_id}",
            **meta,
        )
    dims = [d for d in report["dimensions"] if d.get("p_value") is not None]
    drifted = [d["name"] for d in dims if d.get("drifted") or d.get("verdict") == "drift"]
    if drifted or report.get("drift_detected"):
        return answer("not equivalent", "drift detected in " + (", ".join(drifted) or "the overall verdict"), **meta)
    if generated is None or now - generated > max_age:
        age = "of unknown age" if generated is None else f"{(now - generated).days} day(s) old"
        return answer(
            "inconclusive",
            f"the latest report is {age}; today's evidence needs one from the last {max_age.days} day(s)",
            **meta,
        )
    margin, alpha, n = report.get("margin", report.get("threshold")), report.get("alpha"), report.get("n_pairs")
    unproven = verdicts.unproven_dimensions(report)
    if verdicts.shows_equivalence(report):
        return answer(
            "equivalent",
            f"every tested dimension's {1 - 2 * float(alpha):.0%} interval lies within +/-{margin} over {n} "
            f"paired replays (two one-sided tests: at most {alpha} chance of calling a real change of the "
            "margin equivalent)",
            **meta,
        )
    needed = report.get("pairs_needed")
    return answer(
        "inconclusive",
        f"no drift, but equivalence within +/-{margin} is not shown for {', '.join(unproven) or 'any dimension'} "
        f"over {n} paired replays" + (f"; about {needed} pairs would likely decide" if needed else ""),
        **meta,
    )


def _parse_time(value: Any) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(str(value)))
    except (TypeError, ValueError):
        return None


def _check_report(report: dict[str, Any]) -> None:
    """Subject and pairs are checked by `reports.verify`; the margin is what the verdict is measured against."""
    margin = report.get("margin", report.get("threshold"))
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin <= 1:
        raise InvalidInputError(f"the drift report's margin must be in (0, 1], got {margin!r}")


def _test(dim: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "kind",
        "test",
        "baseline_value",
        "candidate_value",
        "effect",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "n",
        "drifted",
        "near_miss",
        "verdict",
        "verdict_reason",
        "margin",
        "equivalence_low",
        "equivalence_high",
        "pairs_needed",
    )
    return {k: dim.get(k) for k in keys}


def _revision(m: manifests.Manifest) -> dict[str, Any]:
    return {
        "revision": m.revision,
        "created_at": _utc(m.created_at).isoformat(),
        "created_by": m.created_by,
        "pinned_model_id": m.pinned_model_id,
        "pinned_at": _utc(m.pinned_at).isoformat(),
        "behavioral_baseline_id": m.behavioral_baseline_id,
        "drift_alert_threshold": m.drift_alert_threshold,
        "reason": m.reason,
    }


def _baseline(store: Store, baseline_id: str | None) -> dict[str, Any] | None:
    if baseline_id is None:
        return None
    with store.session() as session:
        row = session.get(Baseline, baseline_id)
        if row is None:
            return {"baseline_id": baseline_id, "found": False}
        return {
            "baseline_id": row.baseline_id,
            "found": True,
            "model_id": row.model_id,
            "n_prompts": row.n_prompts,
            "uri": row.uri,
            "summary": row.summary,
            "created_at": _utc(row.created_at).isoformat(),
        }


def _alias_history(store: Store, model_ids: set[str]) -> list[dict[str, Any]]:
    with store.session() as session:
        # every alias that ever resolved to a pinned version: a silent re-point shows up here
        names = set(
            session.execute(select(AliasResolution.alias).where(AliasResolution.model_id.in_(model_ids))).scalars()
        )
    periods = []
    for alias in sorted(names):
        for p in registry.alias_history(store, alias):
            periods.append(
                {
                    "alias": p.alias,
                    "model_id": p.model_id,
                    "valid_from": _utc(p.valid_from).isoformat(),
                    "valid_to": _utc(p.valid_to).isoformat() if p.valid_to else None,
                    "observed_by": p.observed_by,
                }
            )
    return periods


def _migration(m: states.MigrationInfo) -> dict[str, Any]:
    return {
        "id": m.id,
        "from_model_id": m.from_model_id,
        "to_model_id": m.to_model_id,
        "state": m.state,
        "readiness": m.readiness,
        "review": m.details.get("review"),  # with the signed approval statement, when a reviewer signed
        "staging_report": {k: (m.details.get("staging") or {}).get(k) for k in ("report_id", "report_sha256")},
        "attachments": [
            {k: a.get(k) for k in ("origin", "file", "sha256", "by")} for a in m.details.get("attachments", [])
        ],
        "breach": m.details.get("breach"),
        "created_at": m.created_at.isoformat(),
        "updated_at": m.updated_at.isoformat(),
    }


def _utc(ts: datetime) -> datetime:
    from datetime import UTC

    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Equivalence evidence {{ e.tenant_id }}/{{ e.agent_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
.verdict{font-size:1.3rem;padding:.8rem;border-radius:6px}
.equivalent{background:#e6f4ea}.not-equivalent{background:#fce8e6}.inconclusive{background:#fef7e0}
.bad{color:#b3261e;font-weight:600}code{font-size:.8rem}
</style></head><body>
<h1>Equivalence evidence: {{ e.tenant_id }}/{{ e.agent_id }}</h1>
<p>{{ e.question }}</p>
<div class="verdict {{ e.answer.verdict | replace(' ', '-') }}"><strong>{{ e.answer.verdict | upper }}</strong>: {{ e.answer.summary }}</div>
{% for note in e.answer.notes %}<p class="bad">Note: {{ note }}</p>{% endfor %}
<p>Generated {{ e.generated_at }}. Audit chain: {% if e.audit_chain.ok %}intact ({{ e.audit_chain.checked }} entries verified){% else %}<span class="bad">BROKEN at entry {{ e.audit_chain.first_bad_seq }}: {{ e.audit_chain.problem }}</span>{% endif %}.</p>

<h2>Then and now</h2>
<table><tr><th></th><th>revision</th><th>model</th><th>baseline</th><th>threshold</th><th>since</th></tr>
{% for label, r in [("validated", e.validated), ("in force", e.current)] %}
<tr><td>{{ label }}</td><td>{{ r.revision }}</td><td>{{ r.pinned_model_id }}</td><td>{{ r.behavioral_baseline_id | fmt }}</td><td>{{ r.drift_alert_threshold }}</td><td>{{ r.created_at }}</td></tr>
{% endfor %}</table>

<h2>Baseline</h2>
{% if e.baseline %}<table>{% for k, v in e.baseline.items() %}<tr><th>{{ k }}</th><td>{% if v is mapping %}<code>{{ v | tojson }}</code>{% else %}{{ v | fmt }}{% endif %}</td></tr>{% endfor %}</table>
{% else %}<p>No behavioural baseline recorded.</p>{% endif %}

<h2>Tests (latest replay)</h2>
{% if e.answer.report_age_hours is defined %}<p>Report {{ e.answer.report_uri | fmt }}, generated {{ e.answer.report_generated_at }} ({{ e.answer.report_age_hours }} hours before this evidence).</p>{% endif %}
{% if e.drift_report_ref %}<p>Stored report {{ e.drift_report_ref.report_id }}, sha256 <code>{{ e.drift_report_ref.sha256 }}</code> (verified against the store, the audit log and its object copy).</p>{% endif %}
{% for a in e.attachments %}<p class="bad">Attached file {{ a.file }} (sha256 <code>{{ a.sha256 }}</code>): {{ a.origin }}; not part of the answer.</p>{% endfor %}
{% if e.tests %}<table><tr><th>dimension</th><th>test</th><th>validated</th><th>today</th><th>effect</th><th>equivalence interval</th><th>margin</th><th>p adj.</th><th>n</th><th>verdict</th></tr>
{% for t in e.tests %}<tr><td>{{ t.name }}</td><td>{{ t.test | fmt }}</td><td>{{ t.baseline_value | fmt }}</td><td>{{ t.candidate_value | fmt }}</td><td>{{ t.effect | fmt }}</td>
<td>[{{ t.equivalence_low | fmt }}, {{ t.equivalence_high | fmt }}]</td><td>&plusmn;{{ t.margin | fmt }}</td><td>{{ t.p_adjusted | fmt }}</td><td>{{ t.n | fmt }}</td><td>{% if t.verdict == "drift" %}<span class="bad">drift</span>{% else %}{{ t.verdict | fmt }}{% endif %}</td></tr>{% endfor %}</table>
<p>Equivalent: the interval lies inside &plusmn;margin (two one-sided tests). Drift: significant after Holm and beyond the margin and the noise floor. Otherwise inconclusive.</p>
{% else %}<p>No drift report of the pinned model is stored: run the nightly replay.</p>{% endif %}

<h2>Version history</h2>
<table><tr><th>rev</th><th>created</th><th>by</th><th>model</th><th>baseline</th><th>reason</th></tr>
{% for r in e.version_history.manifest_revisions %}<tr><td>{{ r.revision }}</td><td>{{ r.created_at }}</td><td>{{ r.created_by }}</td><td>{{ r.pinned_model_id }}</td><td>{{ r.behavioral_baseline_id | fmt }}</td><td>{{ r.reason }}</td></tr>{% endfor %}</table>
{% if e.version_history.aliases %}<table><tr><th>alias</th><th>resolved to</th><th>from</th><th>to</th><th>observed by</th></tr>
{% for a in e.version_history.aliases %}<tr><td>{{ a.alias }}</td><td>{{ a.model_id }}</td><td>{{ a.valid_from }}</td><td>{{ a.valid_to | fmt }}</td><td>{{ a.observed_by }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Migrations</h2>
{% if e.migrations %}<table><tr><th>id</th><th>from</th><th>to</th><th>state</th><th>readiness</th><th>review</th><th>updated</th></tr>
{% for m in e.migrations %}<tr><td>{{ m.id }}</td><td>{{ m.from_model_id }}</td><td>{{ m.to_model_id }}</td><td>{{ m.state }}</td><td>{{ m.readiness }}</td>
<td>{% if m.review %}{{ m.review.decision }} by {{ m.review.reviewer }}{% if m.review.get('key_id') %} (signed, key {{ m.review.key_id }}){% endif %}: {{ m.review.reason }}{% endif %}</td><td>{{ m.updated_at }}</td></tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}

<h2>Audit trail since {{ e.since }}</h2>
<table><tr><th>#</th><th>time</th><th>actor</th><th>action</th><th>subject</th><th>reason</th></tr>
{% for a in e.audit_trail %}<tr><td>{{ a.seq }}</td><td>{{ a.ts }}</td><td>{{ a.actor }}</td><td>{{ a.action }}</td><td>{{ a.subject }}</td><td>{{ a.reason }}</td></tr>{% endfor %}</table>
</body></html>
"""
