"""Correctness: the response's decision equals the record's reference answer (paired accuracy, McNemar).

A reference that the prompt's decision kind cannot hold (a "maybe" for a yes/no question) or a prompt whose
decision is not checkable leaves the pair out (not applicable), never scored as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from drift_pipeline.detection.decisions import DecisionSpec, decision_spec, extract, normalise_number
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


def reference_decision(spec: DecisionSpec, reference: str) -> str | None:
    """The reference in the spec's normalised form, or None when it is malformed for this kind."""
    ref = reference.strip().strip("[]()\"'").strip()
    if not ref:
        return None
    if spec.kind == "option":
        letter = ref[:1].upper() if re.fullmatch(r"[A-Ja-j](?:[.):]\s*.*)?", ref) else None
        return letter if letter in spec.choices else None
    if spec.kind in ("yes_no", "label"):
        return ref.lower() if ref.lower() in spec.choices else None
    if spec.kind == "number":
        value = normalise_number(ref)
        return value if value and re.fullmatch(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", value) else None
    return ref.lower()


class Correctness(Dimension):
    name = "correctness"
    kind = "binary"
    order = 18
    phrase = "is correct"
    applies_when = "records carry a well-formed reference answer for a prompt with a checkable decision"
    description = "the extracted decision equals the reference answer (ref_answer / golden label)"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            spec = decision_spec(pair) if pair.reference else None
            expected = reference_decision(spec, pair.reference or "") if spec else None
            if spec is None or expected is None:
                out.append((None, None))
                continue
            base = extract(spec, pair.baseline_text, pair.baseline_tool_calls)
            cand = extract(spec, pair.candidate_text, pair.candidate_tool_calls)
            out.append((float(base == expected), float(cand == expected)))
        return out


DIMENSION = Correctness()
