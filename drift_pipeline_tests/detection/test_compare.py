"""`compare` acceptance criteria on the real LLMDrift files, other record formats, and the CLI."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from drift_pipeline.cli import compare as cli_compare
from drift_pipeline.detection.compare import compare
from drift_pipeline.detection.dimensions import all_dimensions
from drift_pipeline.detection.report_html import render_html
from drift_pipeline.errors import DriftPipelineError, NotFoundError
from drift_pipeline.traffic.records import TrafficRecord, dumps

# On PRIME (4000 long answers) embedding takes minutes on 2 shared cores; similarity is descriptive
# without a noise floor (it never decides the verdict), so those runs leave it out.
NO_SIMILARITY = [d.name for d in all_dimensions() if d.name != "similarity"]


def run(path, baseline, candidate, **kwargs):
    return compare(path, fmt="llmdrift", baseline=baseline, candidate=candidate, threshold=0.05, **kwargs).report


def verdicts(report):
    return {d["name"]: d["drifted"] for d in report["dimensions"]}


def test_sensitiveq_gpt4_refusal_drift(llmdrift_dir, embedder):
    report = run(llmdrift_dir / "SENSITIVEQ_EVAL.csv", "gpt-4-0314", "gpt-4-0613", embedder=embedder)
    assert report["drift_detected"] and report["n_pairs"] == 100
    refusal = next(d for d in report["dimensions"] if d["name"] == "refusal")
    assert refusal["drifted"] and refusal["direction"] == "up"
    assert refusal["candidate_value"] > refusal["baseline_value"]
    assert report["pairing"] == {
        "baseline_rows": 100,
        "candidate_rows": 100,
        "paired": 100,
        "unpaired_baseline": 0,
        "unpaired_candidate": 0,
        "duplicates": 0,
    }
    assert report["descriptive"][0]["name"] == "similarity" and report["descriptive"][0]["candidate_value"] < 0.6
    # The reader learns which vectors the similarities came from, in the JSON and on the page.
    assert report["embedding_backend"] == embedder.backend.id
    assert f"<td>{embedder.backend.id}</td>" in render_html(report)


@pytest.mark.parametrize(
    ("file", "baseline", "candidate", "must_drift"),
    [
        ("SENSITIVEQ_EVAL.csv", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", None),
        ("PRIME_FULL_EVAL.csv", "gpt-4-0314", "gpt-4-0613", "length"),
        ("PRIME_FULL_EVAL.csv", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", None),
    ],
)
def test_june_2023_drift_is_found(llmdrift_dir, file, baseline, candidate, must_drift):
    report = run(llmdrift_dir / file, baseline, candidate, dimensions=NO_SIMILARITY)
    assert report["drift_detected"] and report["drifted_dimensions"]
    if must_drift:
        assert verdicts(report)[must_drift]


@pytest.mark.parametrize("file", ["SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv"])
@pytest.mark.parametrize("version", ["gpt-4-0314", "gpt-3.5-turbo-0613"])
def test_a_version_against_itself_is_never_drift_and_equivalent_once_pairs_suffice(
    llmdrift_dir, embedder, file, version
):
    report = run(llmdrift_dir / file, version, version, embedder=embedder)
    assert not report["drift_detected"]
    assert all(d["p_value"] == 1.0 for d in report["dimensions"])
    # 100 identical pairs cannot prove equivalence at margin 0.05 (binary needs ~104, continuous ~136);
    # 1,000 can, on every tested dimension.
    if report["n_pairs"] >= 1000:
        assert report["verdict"] == "equivalent" and not report["inconclusive_dimensions"]
    else:
        assert report["verdict"] == "inconclusive" and report["pairs_needed"] > report["n_pairs"]


def test_ten_prompts_of_a_version_against_itself_are_inconclusive(tmp_path, sensitiveq):
    ten = sensitiveq[sensitiveq["model"].str.endswith("gpt-4-0314") & (sensitiveq["id"] < 10)]
    path = tmp_path / "ten.csv"
    ten.to_csv(path, index=False)
    report = run(path, "gpt-4-0314", "gpt-4-0314", dimensions=NO_SIMILARITY)
    assert report["n_pairs"] == 10 and report["verdict"] == "inconclusive" and not report["equivalent_dimensions"]
    assert all(d["equivalence_high"] > 0.05 for d in report["dimensions"])


def test_jsonl_records_pair_by_prompt_id_and_count_unpaired(tmp_path, sensitiveq):
    rows = []
    for rec in sensitiveq[sensitiveq["model"].str.contains("gpt-4")].to_dict("records"):
        if rec["model"].endswith("0613") and rec["id"] >= 90:
            continue  # ten prompts the candidate never answered
        rows.append(
            TrafficRecord(
                tenant_id="acme",
                agent_id="support",
                timestamp=f"2023-06-01T00:00:{rec['id'] % 60:02d}+00:00",
                messages=dumps([{"role": "user", "content": rec["query"]}]),
                response_text=str(rec["answer"]),
                prompt_id=str(rec["id"]),
                served_model=rec["model"].split("/")[-1],
            ).to_row()
        )
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = compare(path, fmt="jsonl", baseline="gpt-4-0314", candidate="gpt-4-0613", dimensions=["refusal"])
    assert result.report["pairing"]["paired"] == 90 and result.report["pairing"]["unpaired_baseline"] == 10
    assert result.report["drifted_dimensions"] == ["refusal"]


def test_unknown_version_is_a_one_line_error(llmdrift_dir):
    with pytest.raises(NotFoundError, match=r"gpt-5.*found: openaichat/gpt-3\.5"):
        run(llmdrift_dir / "SENSITIVEQ_EVAL.csv", "gpt-5", "gpt-4-0613")


def test_cli_writes_json_and_self_contained_html(llmdrift_dir, tmp_path, embedder):
    app = typer.Typer()
    app.callback()(lambda: None)
    cli_compare.register(app)
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    args = ["compare", str(llmdrift_dir / "SENSITIVEQ_EVAL.csv"), "--format", "llmdrift", "--baseline", "gpt-4-0314"]
    args += ["--candidate", "gpt-4-0613", "--output", str(out), "--html", str(page), "--dimension", "refusal"]
    result = CliRunner().invoke(app, [*args, "--dimension", "length", "--threshold", "0.1"])
    assert result.exit_code == 0, result.output
    assert "refusal" in result.output and "drift" in result.output
    report = json.loads(out.read_text())
    assert report["threshold"] == 0.1 and report["drift_detected"]
    html = page.read_text()
    assert "data:image/png;base64," in html and "<script" not in html and "http" not in html.split("</style>")[1]
    bad = CliRunner().invoke(app, [*args[:-4], "--output", str(out), "--format", "xml"])
    assert bad.exit_code != 0 and isinstance(bad.exception, DriftPipelineError)
