"""Survey-style workloads through `compare`: a candidate that stops picking options, one that switches options.

    python benchmarks/bench_survey_decisions.py [--pairs 200] [--seed 1]

Builds the synthetic survey records of drift_pipeline_tests/detection/survey.py (lettered options; the
baseline always picks one) for three candidates: 77 % deflections ("no personal view"), 25 % switched
options, and the baseline itself; prints each comparison's verdict and drifted dimensions in words.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drift_pipeline.detection.compare import compare  # noqa: E402
from drift_pipeline.detection.embeddings import Embedder  # noqa: E402
from drift_pipeline_tests.detection.survey import survey_records, write_jsonl  # noqa: E402

CASES = (
    ("stops picking (77 % deflect)", 0.77, 0.0, "v2"),
    ("switches 25 %", 0.0, 0.25, "v2"),
    ("self", 0.0, 0.0, "v1"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as folder:
        for title, deflect, switch, candidate in CASES:
            path = write_jsonl(survey_records(args.pairs, seed=args.seed, deflect=deflect, switch=switch),
                               Path(folder) / "survey.jsonl")  # fmt: skip
            started = time.perf_counter()
            report = compare(path, fmt="jsonl", baseline="v1", candidate=candidate, embedder=embedder).report
            dims = {d["name"]: d for d in report["dimensions"]}
            print(f"{title}: verdict {report['verdict']} over {report['n_pairs']} pairs "
                  f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
            for name in report["drifted_dimensions"]:
                print(f"  drift  {name:<17} {dims[name]['in_words']}")
            for name in ("non_answer", "decision_given", "decision_changed", "refusal"):
                if name in dims and name not in report["drifted_dimensions"]:
                    print(f"  {dims[name]['verdict']:<6} {name:<17} {dims[name]['in_words']}")


if __name__ == "__main__":
    main()
