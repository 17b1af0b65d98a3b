"""Start-up time of the CLI and scoring throughput with cached embeddings, on real LLMDrift answers.

Each start-up figure is the median wall time of `--rounds` fresh processes:

1. `import drift_pipeline.cli.app`;
2. `drift-pipeline --help`;
3. `drift-pipeline compare` on `--pairs` pairs (GPT-4 March vs June, SENSITIVEQ then PRIME), end to end:
   in a new DRIFT_PIPELINE_HOME (`--cold`: the embedding model is loaded and every text embedded), run
   again in the same home (the embedding store holds the texts, as a rerun on a deployment does), and
   with an `--embedding-cache` file that holds them.

Then scoring with every embedding cached (`score_pairs` on `--scoring-pairs` GPT-3.5 pairs): the first
comparison of a fresh process (lazy imports and per-text caches empty) and a repeat in the same process.
`--importtime` prints the slowest imports of a warm `compare` (`python -X importtime`).

    .venv/bin/python benchmarks/bench_startup.py --pairs 100 --rounds 3 --scoring-pairs 200
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"
CLI = [sys.executable, "-c", "from drift_pipeline.cli.app import main; main()"]  # as the console script
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def records_file(n: int, folder: Path) -> Path:
    """An LLMDrift CSV with the first `n` prompts both GPT-4 versions answered."""
    import pandas as pd

    raw = pd.concat([pd.read_csv(DATA / name) for name in ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv")])
    raw["id"] = raw["dataset"].astype(str) + ":" + raw["id"].astype(str)
    raw = raw[raw["model"].str.endswith(("gpt-4-0314", "gpt-4-0613"))]
    ids = list(dict.fromkeys(raw["id"]))[:n]
    path = folder / f"records_{n}.csv"
    raw[raw["id"].isin(ids)].to_csv(path, index=False)
    return path


def wall(command: list[str], rounds: int, home: Path | None = None) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of `command` in fresh processes; CPU time is the figure
    to trust on a busy machine, where wall time also counts waiting for a core. Each process runs in
    `home`, or (None) in a new empty DRIFT_PIPELINE_HOME: nothing embedded before, no store to read."""
    walls, cpus = [], []
    for _ in range(rounds):
        env = {**ENV, "DRIFT_PIPELINE_HOME": str(home or tempfile.mkdtemp(prefix="bench-startup-home-"))}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def show(label: str, figures: tuple[float, float]) -> None:
    print(f"{label:<46} {figures[0]:6.2f}s wall {figures[1]:6.2f}s CPU")


def compare_command(records: Path, output: Path, cache: Path | None) -> list[str]:
    args = [*CLI, "compare", str(records), "--format", "llmdrift", "--baseline", "gpt-4-0314"]
    args += ["--candidate", "gpt-4-0613", "--output", str(output)]
    return args + (["--embedding-cache", str(cache)] if cache else [])


def top_imports(command: list[str], count: int) -> list[str]:
    """The `count` imports with the largest cumulative time (microseconds) under -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], env=ENV, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            rows.append((int(cumulative), name))
    return [f"{us / 1e6:6.3f}s  {name}" for us, name in sorted(rows, reverse=True)[:count]]


SCORING = """
import sys, time
sys.path.insert(0, {bench!r})
from bench_scoring import real_pairs
from drift_pipeline.detection.embeddings import Embedder, EmbeddingCache
from drift_pipeline.detection.scoring import score_pairs
pairs = real_pairs({n})
embedder = Embedder(EmbeddingCache.load({cache!r}))
for label in ("first comparison in the process", "repeated comparison"):
    start, cpu = time.perf_counter(), time.process_time()
    score_pairs(pairs, baseline="a", candidate="b", threshold=0.05, embedder=embedder)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"scoring, cached embeddings, {{label:<32}} {n:>5} pairs {{seconds:6.2f}}s "
          f"{{{n} / seconds:8.0f}} pairs/s (CPU {{{n} / cpu:6.0f}} pairs/s), {{embedder.texts_embedded}} texts embedded")
"""


def scoring(n: int, cache: Path) -> None:
    """Fill the embedding cache for the scoring pairs (not timed), then time scoring in a fresh process."""
    code = SCORING.format(bench=str(Path(__file__).parent), n=n, cache=str(cache))
    if not cache.exists():
        fill = code.replace(
            "for label in",
            "embedder.embed([]); score_pairs(pairs, baseline='a', candidate='b', "
            "threshold=0.05, embedder=embedder); embedder.cache.save({cache!r}); sys.exit()\nfor label in",
        )
        subprocess.run([sys.executable, "-c", fill.replace("{cache!r}", repr(str(cache)))], env=ENV, check=True)
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="pairs for the end-to-end compare")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per start-up figure (median)")
    parser.add_argument("--scoring-pairs", type=int, default=200, help="pairs for the scoring figure (0: skip)")
    parser.add_argument("--cold", action="store_true", help="also time compare without an embedding cache")
    parser.add_argument("--importtime", type=int, default=0, help="print this many slowest imports of compare")
    parser.add_argument("--blas-threads", type=int, help="OMP/OpenBLAS threads (spinning BLAS threads add CPU time)")
    parser.add_argument("--cache-dir", type=Path, help="keep embedding caches here across runs (default: temp)")
    args = parser.parse_args()
    if args.blas_threads:
        ENV.update(OMP_NUM_THREADS=str(args.blas_threads), OPENBLAS_NUM_THREADS=str(args.blas_threads))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cache_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        records, output = records_file(args.pairs, folder), Path(tmp) / "report.json"
        cache = folder / f"compare_{args.pairs}.npz"
        show("import drift_pipeline.cli.app", wall([*CLI[:1], "-c", "import drift_pipeline.cli.app"], args.rounds))
        show("drift-pipeline --help", wall([*CLI, "--help"], args.rounds))
        if args.cold:
            show(
                f"compare {args.pairs} pairs, new home (load + embed all)",
                wall(compare_command(records, output, None), args.rounds),
            )
        home = Path(tmp) / "home"
        wall(compare_command(records, output, None), 1, home)  # fills the home's embedding store
        show(
            f"compare {args.pairs} pairs, again (embedding store)",
            wall(compare_command(records, output, None), args.rounds, home),
        )
        wall(compare_command(records, output, cache), 1)  # fills the embedding cache
        show(
            f"compare {args.pairs} pairs, --embedding-cache", wall(compare_command(records, output, cache), args.rounds)
        )
        if args.importtime:
            print("slowest imports of a warm compare (cumulative):")
            print(
                "\n".join("  " + line for line in top_imports(compare_command(records, output, cache), args.importtime))
            )
        if args.scoring_pairs:
            scoring(args.scoring_pairs, folder / f"scoring_{args.scoring_pairs}.npz")


if __name__ == "__main__":
    main()
