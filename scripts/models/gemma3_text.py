#!/usr/bin/env python3
"""Extracts the language model of a multimodal Gemma-3 checkpoint (Gemma3ForConditionalGeneration: the 4B, 12B and
27B models) into a text-only model folder (Gemma3ForCausalLM, model_type gemma3_text). abmll reads the multimodal
folder as it is; this is for tools that take text-only models, or to drop the vision tower's weights.

Input: a Hugging Face model folder: config.json with its text_config, model.safetensors or a sharded
model.safetensors.index.json, and the tokenizer files. The language model's tensors are found under either naming,
the original release's (language_model.model.*, language_model.lm_head.*) or the one transformers 5 saves
(model.language_model.*, lm_head.*), and renamed to model.* and lm_head.*; the vision tower and the multimodal
projector are left out. Output: config.json (text_config completed with Gemma3TextConfig's defaults, with its
architecture and the checkpoint's dtype), the tensors in shards of the input's (one output file per input file that
holds any), their index when there are several, and the tokenizer files copied. Tensors are copied one file at a
time, never all at once.

  python scripts/models/gemma3_text.py --model ~/models/gemma-3-12b-pt --out ~/models/gemma-3-12b-pt-text
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

# (source prefix, target prefix): the language model's tensors under both namings.
RENAMES = [("language_model.model.", "model."), ("language_model.lm_head.", "lm_head."),
           ("model.language_model.", "model."), ("lm_head.", "lm_head.")]
# What the multimodal checkpoint holds besides the language model.
SKIPPED = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector.")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "generation_config.json", "chat_template.json", "chat_template.jinja"]


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def text_config(model: Path) -> dict:
    path = model / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    if config.get("model_type") != "gemma3" or not isinstance(config.get("text_config"), dict):
        fail(f"{path}: not a multimodal Gemma-3 config (model_type 'gemma3' with a text_config); "
             f"model_type is {config.get('model_type')!r}")
    # Through transformers' own class, so that what a release's text_config leaves to the defaults (vocab_size,
    # rms_norm_eps, ...) is written out.
    from transformers import Gemma3TextConfig

    try:
        text = Gemma3TextConfig(**config["text_config"]).to_dict()
    except (TypeError, ValueError) as e:
        fail(f"{path}: text_config: {e}")
    text["architectures"] = ["Gemma3ForCausalLM"]
    text["model_type"] = "gemma3_text"
    # The multimodal model ties its head by the top level's flag (Gemma3Config's, true by default), not by
    # text_config's (which keeps its own default, true, when the top level's is false).
    text["tie_word_embeddings"] = config.get("tie_word_embeddings", True)
    for key in ("dtype", "torch_dtype"):
        if config.get(key) is not None and text.get(key) is None:
            text[key] = config[key]
    return text


def renamed(name: str):
    """The text-only model's name for a tensor, or None when it is not the language model's."""
    if name.startswith(SKIPPED):
        return None
    for source, target in RENAMES:
        if name.startswith(source):
            return target + name[len(source):]
    return None


def shard_files(model: Path):
    index = model / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return sorted(set(weight_map.values()))
    if not (model / "model.safetensors").exists():
        fail(f"{model}: neither model.safetensors nor model.safetensors.index.json")
    return ["model.safetensors"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the multimodal Gemma-3 folder")
    parser.add_argument("--out", type=Path, required=True, help="the text-only folder to write")
    args = parser.parse_args(argv)
    config = text_config(args.model)
    files = shard_files(args.model)
    args.out.mkdir(parents=True, exist_ok=True)

    written = {}  # output file -> names
    for i, file in enumerate(files):
        tensors = {}
        with safe_open(str(args.model / file), "pt") as f:
            for name in f.keys():
                target = renamed(name)
                if target is None:
                    continue
                if target == "lm_head.weight" and config.get("tie_word_embeddings", True):
                    continue  # the embeddings, again
                if target in tensors or any(target in names for names in written.values()):
                    fail(f"{args.model / file}: '{name}' names a tensor already read ('{target}')")
                tensors[target] = f.get_tensor(name)
        if not tensors:
            continue
        out_file = "model.safetensors" if len(files) == 1 else f"model-{i + 1:05d}-of-{len(files):05d}.safetensors"
        save_file(tensors, str(args.out / out_file), metadata={"format": "pt"})
        written[out_file] = list(tensors)
        del tensors
    if not any("model.embed_tokens.weight" in names for names in written.values()):
        fail(f"{args.model}: no language model tensors (language_model.model.* or model.language_model.*)")
    if len(written) > 1 or "model.safetensors" not in written:
        weight_map = {name: file for file, names in written.items() for name in names}
        (args.out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2), encoding="utf-8")
    (args.out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (args.model / name).exists():
            shutil.copyfile(args.model / name, args.out / name)
    count = sum(len(names) for names in written.values())
    print(f"wrote {count} tensors in {len(written)} file(s) and config.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
