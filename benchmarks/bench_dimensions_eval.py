"""Precision and recall of the response-level detectors on the labelled evaluation set (benchmarks/eval_set).

    python benchmarks/bench_dimensions_eval.py [--set benchmarks/eval_set] [--by-source]

Prints, per detector: refusal (refusal.is_refusal), non-answer (the non_answer dimension: decision
extractor + embedding classifier), decision given / decision value (decisions.extract) and formatting
(markdown elements > 0); then the confusion between answer, refusal and non-answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drift_pipeline.detection.decisions import extract, prompt_spec  # noqa: E402
from drift_pipeline.detection.dimensions.formatting import DIMENSION as FORMATTING  # noqa: E402
from drift_pipeline.detection.dimensions.non_answer import non_answers  # noqa: E402
from drift_pipeline.detection.dimensions.refusal import is_refusal  # noqa: E402
from drift_pipeline.detection.embeddings import Embedder  # noqa: E402

CLASSES = ("answer", "refusal", "non_answer")


def load(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        if path.name.endswith("_raw.jsonl"):
            continue  # unlabelled generations
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def scores(pairs: list[tuple[bool, bool]]) -> tuple[float, float, int, int]:
    """(precision, recall, predicted positives, labelled positives) of (predicted, labelled) pairs."""
    tp = sum(p and t for p, t in pairs)
    pred, true = sum(p for p, _ in pairs), sum(t for _, t in pairs)
    return (tp / pred if pred else float("nan"), tp / true if true else float("nan"), pred, true)


def evaluate(rows: list[dict], embedder: Embedder) -> dict[str, list[tuple[bool, bool]]]:
    specs = [prompt_spec(r["prompt"]) for r in rows]
    non = non_answers([(r["response"], None, s) for r, s in zip(rows, specs, strict=True)], embedder)
    out: dict[str, list[tuple[bool, bool]]] = {k: [] for k in ("refusal", "non_answer", "decision given")}
    out |= {"decision value": [], "formatting": []}
    confusion: Counter[tuple[str, str]] = Counter()
    for row, spec, na in zip(rows, specs, non, strict=True):
        labels, text = row["labels"], row["response"]
        refusal = is_refusal(text)
        out["refusal"].append((refusal, labels["refusal"]))
        out["non_answer"].append((bool(na), labels["non_answer"]))
        truth = "refusal" if labels["refusal"] else "non_answer" if labels["non_answer"] else "answer"
        confusion[(truth, "refusal" if refusal else "non_answer" if na else "answer")] += 1
        if spec is not None:
            got = extract(spec, text)
            out["decision given"].append((got is not None, labels["decision"] is not None))
            # A decision counts as found only when it is the labelled one.
            out["decision value"].append(
                (got is not None and got == labels["decision"], labels["decision"] is not None)
            )
        if labels.get("formatting") is not None:
            out["formatting"].append(((FORMATTING.value(text, None, None) or 0) > 0, labels["formatting"]))  # type: ignore[arg-type]
    out["_confusion"] = confusion  # type: ignore[assignment]
    return out


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"  # undefined (no positives) is not 0 %


def report(title: str, result: dict) -> None:
    print(f"\n{title}")
    print(f"{'detector':<16}{'precision':>10}{'recall':>8}{'predicted':>11}{'labelled':>10}{'n':>6}")
    for name, pairs in result.items():
        if name.startswith("_"):
            continue
        p, r, pred, true = scores(pairs)
        print(f"{name:<16}{_pct(p):>10}{_pct(r):>8}{pred:>11}{true:>10}{len(pairs):>6}")
    confusion = result["_confusion"]
    print("confusion (rows: label, columns: predicted)")
    print(f"{'':<12}" + "".join(f"{c:>12}" for c in CLASSES))
    for truth in CLASSES:
        print(f"{truth:<12}" + "".join(f"{confusion[(truth, c)]:>12}" for c in CLASSES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "benchmarks" / "eval_set")
    parser.add_argument("--by-source", action="store_true", help="also print each source's figures")
    args = parser.parse_args()
    rows = load(args.set)
    embedder = Embedder()
    started = time.perf_counter()
    report(f"all {len(rows)} labelled responses", evaluate(rows, embedder))
    if args.by_source:
        for source in sorted({r["source"] for r in rows}):
            subset = [r for r in rows if r["source"] == source]
            report(f"{source}: {len(subset)} responses", evaluate(subset, embedder))
    print(f"\n{time.perf_counter() - started:.1f} s (model load and classifier fit included)")


if __name__ == "__main__":
    main()
