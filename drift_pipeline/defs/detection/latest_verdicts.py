"""The drift_report overview's fleet view: each tenant agent's latest verdict, those needing attention listed.

`detection/latest_verdicts.py` computes it from the stored reports; this module only shapes it into
Dagster metadata, added to every drift_report materialization.
"""

import dagster as dg

from drift_pipeline.defs.report_links import report_links
from drift_pipeline.detection import latest_verdicts, wording
from drift_pipeline.persistence.objects import ObjectStore

ATTENTION_COLUMNS = [
    dg.TableColumn("tenant"),
    dg.TableColumn("agent"),
    dg.TableColumn("model"),
    dg.TableColumn(
        "verdict",
        description="UNVERIFIED (the stored report fails verification), DRIFT or INCONCLUSIVE "
        "(equivalent tenant agents are only counted)",
    ),
    dg.TableColumn("why", description="the drifted dimensions' figures, or what an inconclusive one lacks"),
    dg.TableColumn("report", description="its HTML report"),
]


def latest_verdicts_metadata(
    latest: latest_verdicts.LatestVerdicts, objects: ObjectStore, log: object = None
) -> dict[str, object]:
    """Every tenant agent's latest pinned-model verdict: the ones needing attention listed, all counted.

    A table, not Markdown: Dagster shows it inline at any length and renders its cells as plain text, so a
    stored value cannot add a link or HTML. `tenant_agents/<verdict>` are plain counts on every
    materialization, so the Plots tab draws the fleet's drifted and inconclusive tenant agents per night.
    """
    links = report_links(objects, sorted({s.html_uri for s in latest.attention if s.html_uri}), log)
    counts = {v: latest.counts.get(v, 0) for v in (*wording.VERDICTS, latest_verdicts.UNVERIFIED)}
    listed = f"; {len(latest.attention)} listed, {latest.more} more not shown" if latest.more else ""
    unverified = counts[latest_verdicts.UNVERIFIED]
    failed = f"; {unverified} whose stored report fails verification" if unverified else ""
    records = [
        dg.TableRecord(
            {
                "tenant": s.tenant_id,
                "agent": s.agent_id,
                "model": s.model_id,
                "verdict": s.verdict,
                "why": s.why,
                "report": links.get(s.html_uri or "", ""),
            }
        )
        for s in latest.attention
    ]
    return {
        "latest_verdicts": (
            f"{counts[wording.DRIFT]} drifted, {counts[wording.INCONCLUSIVE]} inconclusive, "
            f"{counts[wording.EQUIVALENT]} equivalent of {latest.total} tenant agents "
            f"(each one's latest verdict on its pinned model since {latest.since:%Y-%m-%d %H:%M} UTC{listed}){failed}"
        ),
        "needs_attention": dg.MetadataValue.table(records, dg.TableSchema(ATTENTION_COLUMNS)),
        **{f"tenant_agents/{v.lower()}": n for v, n in counts.items()},
    }
