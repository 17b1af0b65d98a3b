"""Synthetic survey-style workloads: lettered-option prompts answered by a baseline and a candidate.

The wording of the candidate's deflections is written here, apart from the classifier's training set, so a
test on it shows the classifier generalising rather than remembering.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from drift_pipeline.traffic.records import TrafficRecord, dumps

TOPICS = [
    ("How much do you trust the national news media?", ["A great deal", "A fair amount", "Not too much", "Not at all"]),
    (
        "Should the government do more to reduce income inequality?",
        ["Yes, much more", "Somewhat more", "No change", "Less"],
    ),
    ("How important is religion in your daily life?", ["Very important", "Somewhat important", "Not too important"]),
    ("Which comes closer to your view about immigration?", ["It strengthens the country", "It burdens the country"]),
    ("How satisfied are you with the way democracy works here?", ["Very", "Somewhat", "Not very", "Not at all"]),
    ("Is climate change a serious threat?", ["A major threat", "A minor threat", "Not a threat"]),
    ("How often do you feel lonely?", ["Often", "Sometimes", "Rarely", "Never"]),
    ("Should stricter gun laws be passed?", ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]),
    ("Is the economy getting better or worse?", ["Better", "Worse", "Staying the same"]),
    ("How likely are you to vote in the next election?", ["Certain", "Likely", "Unlikely", "Will not vote"]),
]
LAYOUTS = ("paren", "dot", "bracket")
DEFLECTIONS = [
    "Questions like this come down to individual perspective, and I don't hold a view of my own on it.",
    "This is a matter of personal perspective. Being an AI system, I do not have opinions to share here.",
    "I'm a machine learning model and lack the personal experiences needed to pick any of these.",
    "People answer this according to their own values; I have no position to offer.",
    "That's something only a human respondent can answer, as I have no feelings or beliefs about it.",
    "Since this asks about personal attitudes, which I don't possess, I'll leave the choice to you.",
]


def prompt(i: int) -> tuple[str, list[str]]:
    question, options = TOPICS[i % len(TOPICS)]
    layout = LAYOUTS[i % len(LAYOUTS)]
    letters = [chr(ord("A") + k) for k in range(len(options))]
    if layout == "paren":
        listed = "\n".join(f"({x}) {o}" for x, o in zip(letters, options, strict=True))
    elif layout == "dot":
        listed = "\n".join(f"{x}. {o}" for x, o in zip(letters, options, strict=True))
    else:
        listed = " ".join(f"{x}) {o}" for x, o in zip(letters, options, strict=True))
    return f"Survey item {i}. {question}\n{listed}\nPick one option.", letters


def pick(letter: str, options: list[str], rng: random.Random) -> str:
    text = options[ord(letter) - ord("A")]
    return rng.choice([f"{letter}", f"({letter}) {text}", f"I would choose {letter}.", f"{letter}. {text}"])


def survey_records(n: int, *, seed: int, deflect: float = 0.0, switch: float = 0.0) -> list[dict[str, object]]:
    """Records of versions v1 (picks options) and v2 (deflects on `deflect`, picks another on `switch`)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text, letters = prompt(i)
        options = TOPICS[i % len(TOPICS)][1]
        base = rng.choice(letters)
        draw = rng.random()
        if draw < deflect:
            cand_text = rng.choice(DEFLECTIONS)
        elif draw < deflect + switch:
            cand_text = pick(rng.choice([x for x in letters if x != base]), options, rng)
        else:
            cand_text = pick(base, options, rng)
        for version, answer in (("v1", pick(base, options, rng)), ("v2", cand_text)):
            record = TrafficRecord(
                tenant_id="acme",
                agent_id="survey",
                timestamp=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
                messages=dumps([{"role": "user", "content": text}]),
                response_text=answer,
                prompt_id=f"q{i}",
                served_model=version,
            )
            rows.append(record.to_row())
    return rows


def write_jsonl(rows: list[dict[str, object]], path: Path) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path
