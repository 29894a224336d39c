"""Benchmark of one ABMLL meta-training step at a real model shape with random weights (model.random_weights: nothing
is downloaded), as `abmll meta-train` runs it: the paper's Llama-3-8B configuration
(configs/paper/crossfit-cls-45/llama3-8b-abmll.yaml: weight family, LoRA r = 16 on q/v, gradient checkpointing) with
4 tasks per meta-batch, 8 support and 8 query sequences of 256 tokens per task, K = 5 inner steps, bf16 base weights
on the GPU. Synthetic CrossFit-format tasks whose inputs are cut from the left to exactly 256 tokens.

Reported per step (median over the timed steps after warm-up, from metrics.jsonl): seconds, tokens/s, peak memory
(the caching allocator's peak on a GPU) and model FLOP utilisation:
  FLOPs = (K + 1) passes x [4 x N_layers x tokens + 12 x L x D x T^2 x sequences + 4 x V x D x scored tokens],
N_layers the decoder layers' parameters (embeddings excluded; the vocabulary projection counted only where abmll
computes it, at answer tokens), 4 = forward + input-gradient backward of frozen weights, attention
QK^T and AV forward and twice that backward; recomputation by gradient checkpointing not counted (the usual MFU
convention). Peak: --peak-tflops (default 989, dense bf16 of an H100/H200 SXM).
With --reference, also the factor family (the same configuration otherwise, traced) against the Python reference of
that step (reference_step.py: transformers with its gradient checkpointing, random weights of the same shape, the
same token ids and hyperparameters), each in its own process. `--shape qwen3-8b` runs the same step at Qwen3-8B's
shape. Not a test: run through scripts/bench.sh. `--shape small --device cpu --seq 64 --inner-steps 1` checks the
plumbing on a CPU."""
import argparse
import json
import pathlib
import random
import shutil
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}
SHAPES = {
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, max_position_embeddings=8192),
    # Qwen3-8B: 36 layers, a narrower MLP, RMSNorm of each query and key head (its cost is not counted in FLOPs).
    "qwen3-8b": dict(model_type="qwen3", hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                     rope_theta=1000000.0, max_position_embeddings=40960, rms_norm_eps=1e-6),
    "small": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=4, vocab_size=32000, rope_theta=10000.0, max_position_embeddings=1024),
}
TASKS, SHOTS = 4, 8
PAPER_CONFIG = ROOT / "configs/paper/crossfit-cls-45/llama3-8b-abmll.yaml"


def write_model(folder, shape, demo_tokenizer):
    folder.mkdir(parents=True, exist_ok=True)
    sizes = dict(SHAPES[shape])
    model_type = sizes.pop("model_type", "llama")
    config = {"architectures": [ARCHITECTURES[model_type]], "model_type": model_type, "hidden_act": "silu",
              "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "attention_bias": False,
              "bos_token_id": 256, "eos_token_id": 257, "torch_dtype": "bfloat16", **sizes}
    if model_type == "llama":
        config["mlp_bias"] = False
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(demo_tokenizer, folder / "tokenizer.json")  # byte-level: ids < 263 fit any vocabulary


def write_tasks(folder, count=8):
    """CrossFit-format tasks (k = 16, seed 100) of long random-letter inputs, a yes/no label each."""
    rng = random.Random(0)
    names = [f"long_{i}" for i in range(count)]
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev", "test"):
            lines = []
            for _ in range(64):
                text = " ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(400))
                lines.append(f"letters: {text}\t{rng.choice(['yes', 'no'])}")
            (folder / name / f"{name}_16_100_{split}.tsv").write_text("\n".join(lines) + "\n")
    (folder / "partitions").mkdir(exist_ok=True)
    (folder / "partitions/long.json").write_text(json.dumps({"train": names[:-1], "dev": [], "test": names[-1:]}))


def flops_per_step(shape, scored_tokens, seq, k):
    s = SHAPES[shape]
    d, i, l, v = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
    dh = s.get("head_dim", d // s["num_attention_heads"])
    per_layer = d * s["num_attention_heads"] * dh * 2 + d * s["num_key_value_heads"] * dh * 2 + 3 * d * i + 2 * d
    sequences = TASKS * SHOTS
    tokens = sequences * seq
    one_pass = 4 * per_layer * l * tokens + 12 * l * d * seq * seq * sequences + 4 * v * d * scored_tokens
    return (k + 1) * one_pass


def run_abmll(args, overrides, out, trace=False, profile=None):
    """abmll meta-train for warmup + steps steps -> (median seconds per step, tokens/s, peak memory MB). With
    `profile` (a folder), one more step runs under LibTorch's profiler with memory recording, untimed, and its
    operator and memory tables and trace are copied there."""
    shutil.rmtree(out, ignore_errors=True)
    timed = args.warmup + args.steps
    cmd = [args.abmll, "meta-train", "--config", str(PAPER_CONFIG), "--max-steps", str(timed + (1 if profile else 0)),
           "--out", str(out)] + (["--trace-step", "1"] if trace else [])
    if profile:
        cmd += ["--profile-step", str(timed + 1), "--profile-memory"]
    for item in overrides:
        cmd += ["--set", item]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"abmll failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][:timed]
    if profile and (out / "profile").is_dir():  # profiling failing leaves the timings standing
        shutil.copytree(out / "profile", profile, dirs_exist_ok=True)
    elapsed = [line["elapsed_s"] for line in lines]
    seconds = statistics.median([b - a for a, b in zip(elapsed, elapsed[1:])][args.warmup - 1:])
    tokens_per_s = statistics.median(line["tokens_per_s"] for line in lines[args.warmup:])
    return seconds, tokens_per_s, max(line["peak_memory_mb"] for line in lines), max(
        (line["peak_reserved_mb"] for line in lines if "peak_reserved_mb" in line), default=None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--abmll", required=True)
    parser.add_argument("--shape", default="llama3-8b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--cache", default=str(pathlib.Path.home() / ".cache/abmll/bench/shape-step"))
    parser.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--inner-steps", type=int, default=5, help="K")
    parser.add_argument("--reference", action="store_true", help="also the factor family against the Python reference")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides (KEY=VALUE)")
    parser.add_argument("--json", help="write the record here")
    parser.add_argument("--profile", help="profile one more step of the weight-family run into this folder")
    args = parser.parse_args()
    cache = pathlib.Path(args.cache)
    demo = cache / "demo"
    if not (demo / "model/tokenizer.json").exists():
        subprocess.run([args.abmll, "make-demo", "--out", demo], check=True, capture_output=True)
    model = cache / f"model-{args.shape}"
    write_model(model, args.shape, demo / "model/tokenizer.json")
    data = cache / "data"
    if not (data / "partitions/long.json").exists():
        write_tasks(data)
    gpu = args.device != "cpu"
    overrides = [f"model.path={model}", "model.random_weights=true", f"run.device={args.device}",
                 "model.dtype=" + ("bfloat16" if gpu else "float32"), f"model.max_length={args.seq}",
                 f"data.path={data}", f"data.partition={data / 'partitions/long.json'}", f"data.shots={SHOTS}",
                 f"data.query_size={SHOTS}", f"outer.tasks_per_batch={TASKS}", f"inner.steps={args.inner_steps}",
                 "inner.samples=1", "run.log_every=1", "run.checkpoint_every=0", *args.set]
    case = (f"meta-step {args.shape} random weights, {TASKS} tasks x ({SHOTS}+{SHOTS}) x {args.seq} tokens, "
            f"K={args.inner_steps}")
    if args.set:
        case += " [" + ", ".join(args.set) + "]"
    scored = 2 * TASKS * SHOTS  # one answer token (" yes" / " no") per support and per query sequence
    flops = flops_per_step(args.shape, scored, args.seq, args.inner_steps)
    tag = f"{args.shape}-{args.device.replace(':', '')}"
    records = []
    seconds, tokens_per_s, peak, reserved = run_abmll(args, overrides, cache / f"run-{tag}", profile=args.profile)
    records.append({"case": case + ", weight family (paper config)", "impl": "abmll", "device": args.device,
                    "seconds_per_step": seconds, "tokens_per_s": tokens_per_s, "peak_memory_mb": peak,
                    "tflops_per_step": flops / 1e12})
    if reserved is not None:  # what the GPU must have free: tensors and the allocator's reserve
        records[-1]["peak_reserved_mb"] = reserved
    if gpu:
        records[-1]["mfu"] = flops / seconds / (args.peak_tflops * 1e12)
    if args.reference:
        out = cache / f"run-{tag}-factor"
        seconds, tokens_per_s, peak, _ = run_abmll(args, overrides + ["posterior.family=factor"], out, trace=True)
        factor_case = case + ", factor family"
        records.append({"case": factor_case, "impl": "abmll", "device": args.device, "seconds_per_step": seconds,
                        "tokens_per_s": tokens_per_s, "peak_memory_mb": peak})
        cmd = [sys.executable, str(pathlib.Path(__file__).with_name("reference_step.py")), "--config-json",
               str(model / "config.json"), "--run", str(out), "--device", args.device,
               "--dtype", "bf16" if gpu else "float32", "--checkpointing", "--steps", str(args.steps), "--warmup",
               str(args.warmup)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"reference failed: {result.stderr[-3000:]}")
        ref = json.loads(result.stdout.strip().splitlines()[-1])
        records.append({"case": factor_case, "impl": "reference", "device": args.device,
                        "seconds_per_step": ref["seconds_per_step"],
                        "tokens_per_s": tokens_per_s * seconds / ref["seconds_per_step"],  # the same tokens per step
                        "peak_memory_mb": ref["peak_memory_mb"]})
    print(json.dumps(records, indent=2))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
