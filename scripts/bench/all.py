"""Runs every benchmark and writes one list of records (scripts/bench.sh): the CPU meta-step against the Python
reference (meta_step.py: tiny and ~100M models), evaluation throughput with and without the shared prompt
(evaluate.py), and on a GPU the meta-step at the Llama-3-8B shape (shape_step.py). Each record: case, impl, device,
seconds_per_step, tokens_per_s, mfu (GPU only), peak_memory_mb (evaluation records: queries_per_s instead)."""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def cpu_name():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.environ.get('OMP_NUM_THREADS', os.cpu_count())} threads)"
    return platform.processor()


def gpu_name():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def run_json(cmd, json_path):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)
    return json.loads(pathlib.Path(json_path).read_text())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--abmll", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--models", default="tiny,100m", help="CPU meta-step models")
    args = parser.parse_args()
    records, cpu = [], cpu_name()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="abmll-bench-"))

    cache = pathlib.Path.home() / ".cache/abmll/bench/meta-step"
    run_json([sys.executable, HERE / "meta_step.py", "--abmll", args.abmll, "--models", args.models],
             cache / "meta_step.json")
    shapes = {"tiny": "demo tiny Llama (2 layers, D 64)", "100m": "~100M Llama (12 layers, D 768)"}
    for r in json.loads((cache / "meta_step.json").read_text()):
        case = f"meta-step {shapes.get(r['model'], r['model'])}, 4 tasks x (8+8) sequences, K=3, float32"
        records.append({"case": case, "impl": "abmll", "device": cpu, "seconds_per_step": r["abmll_seconds_per_step"],
                        "tokens_per_s": r["abmll_tokens_per_s"], "peak_memory_mb": r["abmll_peak_memory_mb"]})
        records.append({"case": case, "impl": "reference", "device": cpu,
                        "seconds_per_step": r["reference_seconds_per_step"],
                        "tokens_per_s": r["abmll_tokens_per_s"] * r["abmll_seconds_per_step"]
                        / r["reference_seconds_per_step"],  # the same tokens per step
                        "peak_memory_mb": r["reference_peak_memory_mb"]})

    for r in run_json([sys.executable, HERE / "evaluate.py", "--abmll", args.abmll, "--json", scratch / "eval.json"],
                      scratch / "eval.json"):
        records.append({**r, "device": cpu})

    gpu = None if args.cpu_only else gpu_name()
    if gpu:
        for r in run_json([sys.executable, HERE / "shape_step.py", "--abmll", args.abmll, "--device", "cuda",
                           "--reference", "--json", scratch / "shape.json"], scratch / "shape.json"):
            records.append({**r, "device": gpu})
    elif not args.cpu_only:
        print("no GPU: the 8B-shape GPU case is not measured", flush=True)

    pathlib.Path(args.out).write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {args.out} ({len(records)} records)")


if __name__ == "__main__":
    main()
