"""Benchmark of answer-option scoring in `abmll evaluate`: the prompt computed once per query for all its options
(eval.share_prompt: true, the default) against the naive per-option forward (one row per option repeating the prompt,
eval.share_prompt: false), on the demo's tiny model and held-out tasks, for `icl` (k = 8 demonstrations in each
prompt, 2 options) and `abmll` (10 posterior samples, so 10 groups x 2 options per query). Throughput is the
report's `scoring_queries_per_s` (queries over the time spent scoring, adaptation excluded), median over runs; the two
settings' probabilities are compared query by query. Not a test: run through scripts/bench.sh or
scripts/bench_evaluate.sh."""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def config_args(demo, extra=()):
    args = ["--config", str(ROOT / "configs/demo.yaml"), "--set", f"model.path={demo / 'model'}",
            "--set", f"data.path={demo / 'data'}", "--set", f"data.partition={demo / 'data/partitions/demo.json'}"]
    for item in extra:
        args += ["--set", item]
    return args


def run(cmd):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{result.stderr[-2000:]}")


def predictions(path):
    return [json.loads(line)["probs"] for line in path.read_text().splitlines()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--abmll", required=True)
    parser.add_argument("--cache", default=str(pathlib.Path.home() / ".cache/abmll/bench/evaluate"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args()
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    demo = cache / "demo"
    if not (demo / "model/model.safetensors").exists():
        run([args.abmll, "make-demo", "--out", demo])
    checkpoint = cache / "meta-train/checkpoints/step-20.safetensors"
    if not checkpoint.exists():  # a prior to adapt from; its quality does not matter for throughput
        run([args.abmll, "meta-train", *config_args(demo), "--max-steps", "20", "--out", cache / "meta-train"])

    records = []
    print("| method | queries/s, shared prompt | queries/s, one row per option | ratio | max abs prob. difference |")
    print("|---|---|---|---|---|")
    for method, extra in (("icl", []), ("abmll", ["--checkpoint", checkpoint])):
        speeds, probs = {}, {}
        for share in (True, False):
            values = []
            for i in range(args.runs):
                out = cache / f"{method}-{'shared' if share else 'naive'}/report.json"
                settings = [f"method={method}", f"eval.share_prompt={str(share).lower()}"]
                run([args.abmll, "evaluate", *config_args(demo, settings), *extra, "--out", out])
                values.append(json.loads(out.read_text())["results"]["scoring_queries_per_s"])
            speeds[share] = statistics.median(values)
            probs[share] = predictions(out.parent / "predictions.jsonl")
            records.append({"case": f"evaluate {method} demo (tiny), 2 options"
                                    + (", 10 posterior samples" if method == "abmll" else ", k=8 demonstrations"),
                            "impl": "abmll" if share else "abmll per-option",
                            "queries_per_s": speeds[share], "runs": values})
        diff = max(abs(a - b) for pa, pb in zip(probs[True], probs[False]) for a, b in zip(pa, pb))
        print(f"| {method} | {speeds[True]:.1f} | {speeds[False]:.1f} | {speeds[True] / speeds[False]:.2f} | "
              f"{diff:.1e} |", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
