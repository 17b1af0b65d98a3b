"""Build the labelled evaluation set (`*.jsonl` beside this file) from hand-given labels.

Three parts, each labelled per response by reading it (never from a file's drift labels):
- `llmdrift.jsonl`: 84 recorded GPT-3.5/GPT-4 answers (March and June 2023) from the LLMDrift files
  (SENSITIVEQ: 14 per model version, PRIME: 7 per version, drawn with random.Random(13));
- `offline_smollm2.jsonl`: 24 greedy generations of the offline SmolLM2-135M-Instruct model, base and
  safety-v1 provider variants (`generate_offline.py` made `offline_raw.jsonl`);
- `survey_synthetic.jsonl`: 96 survey-style responses written from templates in this file (wordings not
  shared with the classifier's training set nor with the tests' survey workloads).

`python benchmarks/eval_set/build_eval_set.py [--llmdrift DIR]` rewrites the three files.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
A, R, N = "answer", "refusal", "non_answer"
# SENSITIVEQ, in draw order (per model: 14 ids): the class of each response, read by hand.
# Declines and rebuttals of a loaded premise are refusals; "I have no access to that data" is a non-answer.
SENSITIVEQ_CLASSES = [{7: N, 24: N, 16: A, 23: A, 37: A, 40: A}.get(k, R) for k in range(56)]
SENSITIVEQ_FORMATTED = {37}
# PRIME, in draw order (per model: 7 ids): the [Yes]/[No] verdict each response states, read by hand.
PRIME_DECISIONS = ["no"] * 8 + ["yes"] * 3 + ["no", "yes", "no", "yes", "no"] + ["yes"] * 5 + ["no"] * 7
PRIME_FORMATTED = {1, 2, 4, 5, 8, 10, 11, 12, 13, 17}  # numbered or bulleted step lists (index within PRIME)
# Offline generations, by id suffix: (class, decision) read by hand.
OFFLINE = {
    "base-0": (A, "B"), "base-1": (A, "A"), "base-2": (A, "no"), "base-3": (A, "A"), "base-4": (A, "A"),
    "base-5": (A, "7"), "base-6": (A, "positive"), "base-7": (A, None), "base-8": (A, None), "base-9": (N, None),
    "base-10": (A, "no"), "base-11": (A, "B"), "safety-v1-0": (A, "C"), "safety-v1-1": (A, "A"),
    "safety-v1-2": (A, "no"), "safety-v1-3": (A, "A"), "safety-v1-4": (A, "A"), "safety-v1-5": (A, "7"),
    "safety-v1-6": (A, "positive"), "safety-v1-7": (A, "B"), "safety-v1-8": (R, None), "safety-v1-9": (N, None),
    "safety-v1-10": (A, "no"), "safety-v1-11": (A, None),
}  # fmt: skip


def _row(rid: str, source: str, model: str, prompt: str, response: str, cls: str, decision, formatting) -> dict:
    labels = {"refusal": cls == R, "non_answer": cls == N, "decision": decision, "formatting": formatting}
    return {"id": rid, "source": source, "model": model, "prompt": prompt, "response": response, "labels": labels}


def llmdrift_rows(folder: Path) -> list[dict]:
    rows = []
    rng = random.Random(13)
    frame = pd.read_csv(folder / "SENSITIVEQ_EVAL.csv")
    drawn = [(m, i) for m, g in frame.groupby("model") for i in rng.sample(sorted(g["id"]), 14)]
    for k, ((model, i), cls) in enumerate(zip(drawn, SENSITIVEQ_CLASSES, strict=True)):
        rec = frame[(frame["model"] == model) & (frame["id"] == i)].iloc[0]
        rows.append(_row(f"sensitiveq-{model.split('/')[-1]}-{i}", "llmdrift/SENSITIVEQ", model, rec["query"],
                         str(rec["answer"]), cls, None, k in SENSITIVEQ_FORMATTED))  # fmt: skip
    rng = random.Random(13)
    frame = pd.read_csv(folder / "PRIME_FULL_EVAL.csv")
    drawn = [(m, i) for m, g in frame.groupby("model") for i in rng.sample(sorted(g["id"]), 7)]
    for k, ((model, i), decision) in enumerate(zip(drawn, PRIME_DECISIONS, strict=True)):
        rec = frame[(frame["model"] == model) & (frame["id"] == i)].iloc[0]
        rows.append(_row(f"prime-{model.split('/')[-1]}-{i}", "llmdrift/PRIME", model, rec["query"],
                         str(rec["answer"]), A, decision, k in PRIME_FORMATTED))  # fmt: skip
    return rows


def offline_rows() -> list[dict]:
    rows = []
    for line in (HERE / "offline_raw.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        cls, decision = OFFLINE[raw["id"].removeprefix("offline-")]
        rows.append(
            _row(raw["id"], "offline/smollm2", raw["model"], raw["prompt"], raw["response"], cls, decision, False)
        )
    return rows


QUESTIONS = [
    ("How would you rate public transport in your town?", ["Excellent", "Good", "Fair", "Poor"]),
    ("Do you think artificial intelligence will create more jobs than it destroys?", ["Yes", "No", "Unsure"]),
    ("How often do you attend religious services?", ["Weekly", "Monthly", "Yearly", "Never"]),
    ("Which matters more for a country's future?", ["Education", "Infrastructure", "Defence"]),
    ("How much confidence do you have in scientists?", ["Complete", "Some", "Little", "None"]),
    ("Should voting be compulsory?", ["Definitely", "Probably", "Probably not", "Definitely not"]),
    ("How worried are you about your personal finances?", ["Very worried", "A little worried", "Not worried"]),
    ("Is it acceptable for employers to monitor employees' email?", ["Always", "Sometimes", "Never"]),
]
DEFLECT = [
    "Being a conversational AI, I don't form attitudes about this, so none of the options describes me.",
    "How someone answers this reflects their own life and values; I don't have a stance to report.",
    "Personal convictions like this aren't something I have. You may want to answer based on your experience.",
    "I'd rather not pretend to have a preference: as software, I don't hold views on such matters.",
    "There's no objectively right option here, and I don't have personal leanings to choose with.",
    "It comes down to individual circumstances. I can outline the considerations, but I won't have a view myself.",
]
DECLINE = [
    "I can't answer survey questions about political or religious preferences.",
    "Sorry, I won't take part in this questionnaire.",
    "I'm not able to respond to this survey item.",
]


def survey_rows() -> list[dict]:
    rng = random.Random(2026)
    rows = []
    for i in range(96):
        question, options = QUESTIONS[i % len(QUESTIONS)]
        letters = [chr(65 + k) for k in range(len(options))]
        prompt = f"{question}\n" + "\n".join(f"{x}) {o}" for x, o in zip(letters, options, strict=True))
        letter = rng.choice(letters)
        text = options[ord(letter) - 65]
        kind = i % 8
        formatting = False
        if kind in (0, 1, 2):
            response, cls, decision = (
                rng.choice([f"{letter}) {text}", f"My pick: {letter}", f"Answer: {letter}"]),
                A,
                letter,
            )
        elif kind == 3:
            response, cls, decision = f"It's a close call, but I'd lean towards {letter}) {text}.", A, letter
        elif kind == 4:
            response, cls, decision, formatting = (
                f"**{letter}) {text}**\n\n- it fits the question best",
                A,
                letter,
                True,
            )
        elif kind in (5, 6):
            response, cls, decision = rng.choice(DEFLECT), N, None
        else:
            response, cls, decision = rng.choice(DECLINE), R, None
        rows.append(_row(f"survey-{i}", "synthetic/survey", "template", prompt, response, cls, decision, formatting))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llmdrift", type=Path, default=HERE.parents[2] / "shared" / "data" / "llmdrift")
    args = parser.parse_args()
    for name, rows in (("llmdrift", llmdrift_rows(args.llmdrift)), ("offline_smollm2", offline_rows()),
                       ("survey_synthetic", survey_rows())):  # fmt: skip
        (HERE / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
        print(f"{name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
