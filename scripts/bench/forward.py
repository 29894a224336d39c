"""Forward-pass benchmark: abmll's decoder (the abmll_bench binary) against transformers on a ~100M-parameter
Llama-shaped model with random weights (or, with --arch qwen3_moe, a Qwen3-MoE-shaped one: ~520M parameters, ~100M
of them active per token; with --arch deepseek_v3, a DeepSeek-V3-shaped one: latent attention and grouped routing,
~500M parameters; with --arch gpt_oss, a gpt-oss-shaped one: attention sinks, experts with biases and the clamped
SwiGLU, ~500M parameters; with --arch apertus, an Apertus-shaped one: head norms and the ungated xIELU MLP, ~125M
parameters; with --arch qwen3_5, a Qwen3.5-shaped one: three Gated DeltaNet layers to one gated attention layer, ~120M
parameters; with --arch granite4, a Granite-4.0-H-shaped one: five Mamba-2 layers to one attention layer, ~150M
parameters), on CPU, in float32 and bfloat16. Not a test.

Each measurement runs in its own process (so the peak RSS, read from that process's rusage, is its own): load the
model, run `warmup` forwards, then time `runs` forwards of a batch of random token ids (hidden states and logits at
every position, as transformers' forward returns them) and take the median. On a shared machine other jobs slow
some processes down, so each implementation is measured in `repeats` processes, abmll and transformers alternating,
and the table reports the fastest of those medians (the least disturbed) and the largest peak RSS, with
abmll/transformers ratios.

Usage: forward.py --bin BUILD/abmll_bench [--arch llama|qwen3_moe|deepseek_v3|gpt_oss|apertus|qwen3_5|granite4]
       [--model-dir DIR]
       [--batch 4] [--seq 256] [--warmup 2] [--runs 5] [--repeats 3] [--dtypes float32,bfloat16]
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

# A Llama-3-like shape at ~125M parameters (49M of them the untied embeddings and lm_head).
SHAPE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
             intermediate_size=2048, vocab_size=32000, max_position_embeddings=2048, rope_theta=500000.0,
             tie_word_embeddings=False)
# The same attention and vocabulary with Qwen3-MoE's layers (per-head query and key norms, experts): 32 experts of
# width 512, 4 per token renormalised (Qwen3-30B-A3B: 128 of width 768, 8 per token): ~520M parameters (453M of them
# the experts'), ~100M active per token.
MOE_SHAPE = dict(SHAPE, head_dim=64, num_experts=32, num_experts_per_tok=4, moe_intermediate_size=512,
                 norm_topk_prob=True)
# DeepSeek-V3's layers at that width (Moonlight-16B-A3B's proportions): latent attention (query bottleneck 384, key
# and value latent 256, heads of 64 + 32 rotated query/key dimensions and 64 value ones), layer 0 a dense MLP, the
# others 32 experts of width 512 in 8 groups, 4 per token from the 4 best groups, and one shared expert.
DEEPSEEK_SHAPE = dict(SHAPE, num_key_value_heads=12, q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64,
                      qk_rope_head_dim=32, v_head_dim=64, n_routed_experts=32, num_experts_per_tok=4,
                      moe_intermediate_size=512, n_shared_experts=1, first_k_dense_replace=1, n_group=8, topk_group=4)
# gpt-oss's layers at that width: 12 heads of 64 / 4 kv with biases and sinks, every other layer a window of 128, YaRN
# (its factor 32 over an original 64 here, so that the 256 positions rotate as the model's long contexts do), 32
# experts of width 512 with biases, 4 per token, the clamped SwiGLU.
GPT_OSS_SHAPE = dict({k: v for k, v in SHAPE.items() if k != "rope_theta"}, head_dim=64, intermediate_size=512,
                     num_local_experts=32, num_experts_per_tok=4, sliding_window=128,
                     rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                                      "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 64})
# Apertus's layers at the Llama shape's width: per-head query and key norms, an ungated xIELU MLP of width 3072 (its
# two projections hold as many weights as the gated 2048's three; Apertus-8B: 21504 at 4096), ApertusConfig's RoPE.
APERTUS_SHAPE = dict({k: v for k, v in SHAPE.items() if k not in ("rope_theta", "intermediate_size")},
                     intermediate_size=3072)
# Qwen3.5's layers at that width (Qwen3.5-9B's proportions): of every four layers three Gated DeltaNets (4 key heads
# of 64 serving 8 value heads of 64, 4 taps) and one attention layer (8 heads of 128 / 2 kv, gated output, RoPE on a
# quarter of each head); MLP 2048.
QWEN3_5_SHAPE = dict({k: v for k, v in SHAPE.items() if k != "rope_theta"}, num_attention_heads=8,
                     num_key_value_heads=2, head_dim=128, linear_num_key_heads=4, linear_num_value_heads=8,
                     linear_key_head_dim=64, linear_value_head_dim=64, linear_conv_kernel_dim=4,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25})
# Granite-4.0-H's layers at that width (Granite-4.0-H-Micro's proportions): Mamba-2 layers (24 heads of 64, one group
# of B and C of 128, 4 taps, chunks of 256) with an attention layer (12 heads / 4 kv, no RoPE) every sixth; the shared
# MLP 2048; Granite's multipliers.
GRANITE4_SHAPE = dict({k: v for k, v in SHAPE.items() if k != "rope_theta"},
                      layer_types=(["mamba"] * 5 + ["attention"]) * 2, position_embedding_type=None,
                      num_local_experts=0, shared_intermediate_size=2048, mamba_n_heads=24, mamba_d_head=64,
                      mamba_d_state=128, mamba_n_groups=1, mamba_chunk_size=256, embedding_multiplier=12.0,
                      residual_multiplier=0.22, attention_multiplier=0.015625, logits_scaling=6.0)
ARCHS = {"llama": ("LlamaConfig", "LlamaForCausalLM", SHAPE, "llama-125m",
                   "hidden 768, 12 layers, 12 heads / 4 kv, MLP 2048, vocab 32000"),
         "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", MOE_SHAPE, "qwen3-moe-520m",
                       "hidden 768, 12 layers, 12 heads / 4 kv, 32 experts of width 512, 4 per token, vocab 32000"),
         "deepseek_v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM", DEEPSEEK_SHAPE, "deepseek-v3-500m",
                         "hidden 768, 12 layers, 12 heads of latent attention (ranks 384 / 256), 32 experts of "
                         "width 512 in 8 groups, 4 per token, a shared expert, vocab 32000"),
         "gpt_oss": ("GptOssConfig", "GptOssForCausalLM", GPT_OSS_SHAPE, "gpt-oss-500m",
                     "hidden 768, 12 layers, 12 heads / 4 kv with sinks, every other layer a window of 128, 32 experts "
                     "of width 512 with biases, 4 per token, vocab 32000"),
         "apertus": ("ApertusConfig", "ApertusForCausalLM", APERTUS_SHAPE, "apertus-125m",
                     "hidden 768, 12 layers, 12 heads / 4 kv with head norms, xIELU MLP 3072, vocab 32000"),
         "qwen3_5": ("Qwen3_5TextConfig", "Qwen3_5ForCausalLM", QWEN3_5_SHAPE, "qwen3_5-120m",
                     "hidden 768, 12 layers: 9 Gated DeltaNet (4 key heads of 64, 8 value heads of 64) and 3 gated "
                     "attention (8 heads of 128 / 2 kv), MLP 2048, vocab 32000"),
         "granite4": ("GraniteMoeHybridConfig", "GraniteMoeHybridForCausalLM", GRANITE4_SHAPE, "granite4-150m",
                      "hidden 768, 12 layers: 10 Mamba-2 (24 heads of 64, state 128, chunks of 256) and 2 attention "
                      "(12 heads / 4 kv, no RoPE), shared MLP 2048, vocab 32000")}


def make_model(folder: pathlib.Path, arch: str) -> None:
    import torch
    import transformers

    if (folder / "model.safetensors").exists():
        return
    config_class, model_class, shape, _, _ = ARCHS[arch]
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**shape)).to(torch.float32)
    model.save_pretrained(folder, safe_serialization=True)


def transformers_child(args) -> None:
    """Runs in a fresh process: times transformers and prints the same JSON line as abmll_bench."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype).eval()
    torch.manual_seed(args.seed)
    ids = torch.randint(SHAPE["vocab_size"], (args.batch, args.seq))
    seconds = []
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            logits = model(input_ids=ids).logits
            logits.sum().item()
            if i >= args.warmup:
                seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(), "dtype": args.dtype}))


def measure(cmd):
    """Runs cmd; returns (its JSON line, its peak RSS in MiB) from that process's own rusage (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err.read().decode(errors='replace')}")
        line = json.loads(out.read().decode().strip().splitlines()[-1])
    return line, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", help="the abmll_bench binary")
    parser.add_argument("--arch", choices=list(ARCHS), default="llama")
    parser.add_argument("--model-dir", type=pathlib.Path, help="default: ~/.cache/abmll/bench/<the shape's name>")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--child", choices=["transformers"], help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        transformers_child(args)
        return
    if not args.bin:
        parser.error("--bin is required")

    if args.model_dir is None:
        args.model_dir = pathlib.Path.home() / ".cache" / "abmll" / "bench" / ARCHS[args.arch][3]
    make_model(args.model_dir, args.arch)
    common = ["--batch", str(args.batch), "--seq", str(args.seq), "--warmup", str(args.warmup), "--runs",
              str(args.runs), "--seed", str(args.seed)]
    tokens = args.batch * args.seq
    rows = []
    for dtype in args.dtypes.split(","):
        cmds = {"abmll": [args.bin, "--model", str(args.model_dir), "--dtype", dtype, *common],
                "transformers": [sys.executable, __file__, "--child", "transformers", "--model-dir",
                                 str(args.model_dir), "--dtype", dtype, *common]}
        medians, rss, threads = {k: [] for k in cmds}, {k: 0.0 for k in cmds}, {}
        for _ in range(args.repeats):
            for impl, cmd in cmds.items():
                line, peak = measure(cmd)
                medians[impl].append(statistics.median(line["seconds"]))
                rss[impl] = max(rss[impl], peak)
                threads[impl] = line["threads"]
        results = {impl: (tokens / min(medians[impl]), min(medians[impl]), rss[impl], threads[impl], medians[impl])
                   for impl in cmds}
        rows.append((dtype, results))

    import torch
    import transformers

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"transformers {transformers.__version__}; model {args.model_dir} "
          f"({ARCHS[args.arch][4]}); batch {args.batch} x {args.seq} tokens; "
          f"median of {args.runs} runs after {args.warmup} warm-up, fastest of {args.repeats} processes; "
          f"forward + logits at every position")
    header = f"{'dtype':<9} {'impl':<13} {'threads':>7} {'tokens/s':>9} {'median s':>9} {'peak RSS MiB':>12}"
    print(header + f" {'speed ratio':>11} {'RSS ratio':>9}")
    for dtype, results in rows:
        ref = results["transformers"]
        for impl in ("abmll", "transformers"):
            tps, median, rss, threads, medians = results[impl]
            ratio = f"{tps / ref[0]:>11.2f} {rss / ref[2]:>9.2f}" if impl == "abmll" else f"{'1.00':>11} {'1.00':>9}"
            print(f"{dtype:<9} {impl:<13} {threads:>7} {tps:>9.0f} {median:>9.3f} {rss:>12.0f} {ratio}"
                  f"   (medians: {', '.join(f'{m:.3f}' for m in medians)})")
    print("ratios: abmll / transformers (speed > 1: abmll faster; RSS < 1: abmll smaller)")


if __name__ == "__main__":
    main()
