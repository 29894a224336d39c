#!/usr/bin/env python3
"""Converts ChemBench questions to abmll's JSONL format.

Input: ChemBench question files, each a JSON object {"name", "examples": [{"input", "target_scores"}], ...} (the
layout of ChemBench's repository, data/{topic}/*.json), a JSON list of such objects, or JSONL with one per line
(an export of the Hugging Face dataset jablonkagroup/ChemBench, where target_scores may be a JSON string). Only
multiple-choice examples convert: target_scores maps each option's text to 1 (right) or 0; examples with several
right options, or with a numeric `target` instead, are skipped and counted. Output: {out}/{task}.jsonl with
{"input", "output", "options"}, options in ChemBench's order. A task is a topic: the folder a file sits in (relative
to --chembench), else the question's "subfield" or "topic" field, else "chembench"; --task puts everything in one.
ChemBench has no train split: abmll draws support and query sets from each task's file without overlap.

  python scripts/data/chembench_to_jsonl.py --chembench ~/chembench/data --out data/chembench
"""
import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path


def load_questions(path: Path):
    """Yields question objects from a .json (object or list) or .jsonl file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)
        return
    data = json.loads(text)
    yield from (data if isinstance(data, list) else [data])


def convert_question(q: dict, skipped: Counter) -> list:
    """The JSONL rows of one question."""
    rows = []
    for ex in q.get("examples") or []:
        scores = ex.get("target_scores")
        if isinstance(scores, str):
            scores = json.loads(scores)
        if not isinstance(scores, dict) or len(scores) < 2:
            skipped["not multiple choice"] += 1
            continue
        right = [opt for opt, score in scores.items() if float(score) == 1.0]
        if len(right) != 1:
            skipped["no single right option"] += 1
            continue
        text = (ex.get("input") or "").strip()
        if not text:
            skipped["empty input"] += 1
            continue
        rows.append({"input": text, "output": right[0].strip(), "options": [o.strip() for o in scores]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chembench", required=True, type=Path, help="question file, or folder searched recursively")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--task", help="one task name for every question")
    args = ap.parse_args(argv)

    root = args.chembench
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jsonl"))
    if not files:
        print(f"error: no .json or .jsonl files under {root}", file=sys.stderr)
        return 1
    tasks = defaultdict(list)
    skipped = Counter()
    for path in files:
        try:
            questions = list(load_questions(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            print(f"error: {path}: not JSON: {e}", file=sys.stderr)
            return 1
        for q in questions:
            if not isinstance(q, dict):
                skipped["not a question object"] += 1
                continue
            if args.task:
                task = args.task
            elif root.is_dir() and path.parent != root:
                task = path.relative_to(root).parts[0]
            else:
                task = q.get("subfield") or q.get("topic") or "chembench"
            tasks[task].extend(convert_question(q, skipped))
    args.out.mkdir(parents=True, exist_ok=True)
    for task, rows in sorted(tasks.items()):
        if not rows:
            continue
        with open(args.out / f"{task}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{task}: {len(rows)} examples")
    for reason, n in sorted(skipped.items()):
        print(f"skipped {n} examples: {reason}")
    return 0 if any(tasks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
