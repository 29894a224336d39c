#!/usr/bin/env python3
"""Converts LegalBench tasks to abmll's JSONL format.

Input: LegalBench's data folder, one folder per task holding train.tsv and test.tsv (tab-separated, with a header
row; LegalBench's repository and its Hugging Face dataset nguha/legalbench both ship them). The answer column is
`answer`; the input is the `text` column when there is one, else every other column (not `answer`, not `index`)
as "column: value" lines, in file order. Output: {out}/{task}/{train,test}.jsonl with {"input", "output"}; abmll
takes each task's distinct answers as its label set (classification), or, past 64 distinct answers, treats the task
as generation (not scorable by options). LegalBench's train splits are small (a handful of examples): they serve as
ICL demonstrations and support sets (data.format: jsonl, method abmll_icl).

  python scripts/data/legalbench_to_jsonl.py --legalbench ~/legalbench/data --out data/legalbench \
      [--tasks abercrombie hearsay ...]
"""
import argparse
import csv
import json
import sys
from pathlib import Path

SPLITS = ("train", "test")


def row_input(row: dict, columns: list) -> str:
    if "text" in row:
        return row["text"].strip()
    parts = [f"{c}: {row[c].strip()}" for c in columns if c not in ("answer", "index") and row.get(c, "").strip()]
    return "\n".join(parts)


def convert_task(folder: Path, out: Path) -> tuple:
    """Writes the task's JSONL files; returns (examples written, rows skipped, distinct answers)."""
    csv.field_size_limit(1 << 30)
    written = skipped = 0
    answers = set()
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            columns = reader.fieldnames or []
            if "answer" not in columns:
                print(f"error: {path}: no 'answer' column (columns: {', '.join(columns)})", file=sys.stderr)
                return written, skipped, answers
            rows = []
            for number, row in enumerate(reader, start=2):
                text, answer = row_input(row, columns), (row.get("answer") or "").strip()
                if not text or not answer:
                    print(f"{path}:{number}: skipped: empty {'input' if not text else 'answer'}", file=sys.stderr)
                    skipped += 1
                    continue
                rows.append({"input": text, "output": answer})
                answers.add(answer)
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        with open(out / folder.name / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        written += len(rows)
    return written, skipped, answers


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--legalbench", required=True, type=Path, help="LegalBench data folder (one folder per task)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tasks", nargs="*", help="tasks to convert (default: all)")
    args = ap.parse_args(argv)

    names = args.tasks or sorted(p.name for p in args.legalbench.iterdir()
                                 if p.is_dir() and any((p / f"{s}.tsv").is_file() for s in SPLITS))
    if not names:
        print(f"error: no LegalBench tasks (folders with train.tsv/test.tsv) in {args.legalbench}", file=sys.stderr)
        return 1
    status = 0
    for name in names:
        folder = args.legalbench / name
        if not any((folder / f"{s}.tsv").is_file() for s in SPLITS):
            print(f"error: {folder}: no train.tsv or test.tsv", file=sys.stderr)
            status = 1
            continue
        written, skipped, answers = convert_task(folder, args.out)
        if written == 0:
            status = 1
        print(f"{name}: {written} examples, {len(answers)} distinct answers"
              f"{', %d rows skipped' % skipped if skipped else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main())
