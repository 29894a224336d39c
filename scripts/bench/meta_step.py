"""Benchmark of one ABMLL meta-training step (factor family, first order): abmll against a Python reference of the
same step (transformers model + batched Bayesian LoRA written with PyTorch), on the same model, the same token ids
(the episodes abmll traced for step 1) and the same shapes. Each side runs in its own process with the same thread
count; time per step is the median over the timed steps after warm-up; peak memory is the process's maximum RSS.
Not a test: run through scripts/bench_meta_step.sh. The reference (how it is batched, what it measures) is
reference_step.py."""
import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys

SHAPES = {
    "tiny": None,  # the demo model of `abmll make-demo`
    "100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, vocab_size=32000, max_position_embeddings=512, tie_word_embeddings=False),
}


def make_models(abmll, cache):
    demo = cache / "demo"
    if not (demo / "model/model.safetensors").exists():
        subprocess.run([abmll, "make-demo", "--out", demo], check=True, capture_output=True)
    big = cache / "model-100m"
    if not (big / "model.safetensors").exists():
        # In a child process: Linux carries a process's peak RSS into the children it forks, so building the model
        # here would inflate every later peak-memory figure.
        code = ("import sys, json, torch\nfrom transformers import LlamaConfig, LlamaForCausalLM\ntorch.manual_seed(0)\n"
                "LlamaForCausalLM(LlamaConfig(**json.loads(sys.argv[1]))).to(torch.float32)"
                ".save_pretrained(sys.argv[2], safe_serialization=True)")
        subprocess.run([sys.executable, "-c", code, json.dumps(SHAPES["100m"]), str(big)], check=True)
        # The demo's byte-level tokenizer: its ids (< 263) are valid in the larger vocabulary.
        shutil.copy(demo / "model/tokenizer.json", big / "tokenizer.json")
    return {"tiny": demo / "model", "100m": big}, demo / "data"


def config_args(model, data):
    return ["--config", str(pathlib.Path(__file__).resolve().parents[2] / "configs/demo.yaml"),
            "--set", f"model.path={model}", "--set", f"data.path={data}",
            "--set", f"data.partition={data / 'partitions/demo.json'}",
            "--set", "outer.steps=1000", "--set", "run.checkpoint_every=0", "--set", "run.log_every=1000"]


def run_abmll(abmll, model, data, out, steps, warmup):
    """abmll meta-train for warmup + steps steps; per-step seconds from metrics.jsonl, peak RSS from /usr/bin/time."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["/usr/bin/time", "-f", "%M", abmll, "meta-train", *config_args(model, data), "--max-steps",
           str(warmup + steps), "--trace-step", "1", "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"abmll failed: {result.stderr[-2000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    per_step = [b - a for a, b in zip(elapsed, elapsed[1:])][warmup - 1:]
    tokens = statistics.median(line["tokens_per_s"] for line in lines[warmup:])
    return statistics.median(per_step), peak_kb / 1024, tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--abmll")
    parser.add_argument("--cache", default=str(pathlib.Path.home() / ".cache/abmll/bench/meta-step"))
    parser.add_argument("--models", default="tiny,100m")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if not args.abmll:
        parser.error("--abmll is required")
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    models, data = make_models(args.abmll, cache)
    records = []
    print("| model | abmll s/step | reference s/step | speed ratio | abmll peak MB | reference peak MB |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        out = cache / f"run-{name}"
        ours, ours_mb, tokens = run_abmll(args.abmll, models[name], data, out, args.steps, args.warmup)
        child = subprocess.run([sys.executable, pathlib.Path(__file__).with_name("reference_step.py"), "--model",
                                str(models[name]), "--run", str(out), "--steps", str(args.steps), "--warmup",
                                str(args.warmup)], capture_output=True, text=True)
        if child.returncode != 0:
            sys.exit(f"reference failed: {child.stderr[-2000:]}")
        ref = json.loads(child.stdout.strip().splitlines()[-1])
        records.append({"model": name, "abmll_seconds_per_step": ours, "abmll_peak_memory_mb": ours_mb,
                        "abmll_tokens_per_s": tokens, "reference_seconds_per_step": ref["seconds_per_step"],
                        "reference_peak_memory_mb": ref["peak_memory_mb"]})
        print(f"| {name} | {ours:.3f} | {ref['seconds_per_step']:.3f} | {ref['seconds_per_step'] / ours:.2f} | "
              f"{ours_mb:.0f} | {ref['peak_memory_mb']:.0f} |", flush=True)
    (cache / "meta_step.json").write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
