"""Benchmark of answer-option scoring in `abmll evaluate`, three ways: everything shared (the default: a query's prompt
computed once for all its options, eval.share_prompt, and the demonstrations that consecutive ICL prompts begin with
computed once per row of queries, eval.share_prefix), the prompt shared but not the prefix (share_prefix: false), and
the naive per-option forward (one row per option repeating the prompt, share_prompt: false). Cases: the demo's tiny
model and held-out tasks for `icl` (k = 8 demonstrations in each prompt, 2 options) and `abmll` (10 posterior
samples, so 10 groups x 2 options per query), and `icl` on a ~100M-parameter Llama-shaped model with random weights
(scripts/bench/meta_step.py's). Throughput is the report's `scoring_queries_per_s` (queries over the time spent
scoring, adaptation excluded), median over runs; the settings' probabilities are compared query by query. Not a
test: run through scripts/bench.sh, or alone: python scripts/bench/evaluate.py --abmll build/abmll."""
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

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from meta_step import make_models  # the ~100M model, built once into the same cache layout
    models, _ = make_models(args.abmll, cache)
    settings = (("abmll", ["eval.share_prompt=true", "eval.share_prefix=true"]),
                ("abmll shared prompt only", ["eval.share_prompt=true", "eval.share_prefix=false"]),
                ("abmll per-option", ["eval.share_prompt=false"]))
    cases = (("icl", "tiny", [], "k=8 demonstrations"),
             ("abmll", "tiny", ["--checkpoint", checkpoint], "10 posterior samples"),
             ("icl", "100m", [], "k=8 demonstrations"))
    records = []
    print("| method, model | queries/s: all shared | prompt shared | one row per option | ratios to the last | "
          "max abs prob. difference |")
    print("|---|---|---|---|---|---|")
    for method, model, extra, what in cases:
        speeds, probs = {}, {}
        for impl, setting in settings:
            values = []
            for i in range(args.runs):
                out = cache / f"{method}-{model}-{impl.replace(' ', '-')}/report.json"
                overrides = [f"method={method}", f"model.path={models[model]}", *setting]
                run([args.abmll, "evaluate", *config_args(demo, overrides), *extra, "--out", out])
                values.append(json.loads(out.read_text())["results"]["scoring_queries_per_s"])
            speeds[impl] = statistics.median(values)
            probs[impl] = predictions(out.parent / "predictions.jsonl")
            records.append({"case": f"evaluate {method} demo tasks, {model} model, 2 options, {what}",
                            "impl": impl, "queries_per_s": speeds[impl], "runs": values})
        naive = speeds["abmll per-option"]
        diff = max(abs(a - b) for other in probs.values() for pa, pb in zip(probs["abmll"], other)
                   for a, b in zip(pa, pb))
        print(f"| {method}, {model} | " + " | ".join(f"{speeds[impl]:.1f}" for impl, _ in settings) +
              f" | {speeds['abmll'] / naive:.2f}, {speeds['abmll shared prompt only'] / naive:.2f} | {diff:.1e} |",
              flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
