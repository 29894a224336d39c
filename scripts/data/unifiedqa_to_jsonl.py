#!/usr/bin/env python3
"""Converts UnifiedQA TSV tasks to abmll's JSONL format.

abmll reads UnifiedQA folders directly (data.format: unifiedqa). Convert them when you want them in JSONL instead:
to mix them with other JSONL tasks under one partition, to keep only the multiple-choice ones, or to inspect the
options abmll will parse. Input: {unifiedqa}/{task}/{train,dev,test}.tsv, each line question<TAB>answer, parts
separated by a literal backslash-n, options "(a) ... (b) ..." (UnifiedQA lowercases everything). Output:
{out}/{task}/{split}.jsonl with {"input", "output"} and, where the question lists options, "options" (the option
texts; the input keeps them too). Literal "\\n" separators become newlines, as abmll's UnifiedQA reader does.

  python scripts/data/unifiedqa_to_jsonl.py --unifiedqa ~/unifiedqa/data --out data/unifiedqa-jsonl \
      --tasks arc_easy arc_hard openbookqa --multiple-choice-only
"""
import argparse
import json
import re
import sys
from pathlib import Path

SPLITS = ("train", "dev", "test")


def unescape(text: str) -> str:
    """UnifiedQA's literal backslash-n separators (and the spaces around them) as newlines."""
    return "\n".join(part.strip(" ") for part in text.split("\\n")).strip()


def parse_options(text: str, answer: str):
    """Options of the first "(a) ... (b) ..." list holding the answer (else the last list found), or None."""
    found = None
    for m in re.finditer(r"(?:^|(?<=\s))\(([Aa])\) ", text):
        first = m.group(1)
        end = min([i for i in (text.find("\n", m.start()), text.find(" [SEP] ", m.start())) if i >= 0],
                  default=len(text))
        body = text[m.end():end]
        options, letter = [], first
        while True:
            nxt = chr(ord(letter) + 1)
            marker = f" ({nxt}) "
            i = body.find(marker) if nxt.isalpha() else -1
            if i < 0:
                options.append(body.strip())
                break
            options.append(body[:i].strip())
            body = body[i + len(marker):]
            letter = nxt
        if len(options) < 2:
            continue
        if answer.strip() in options:
            return options
        found = options
    return found


def convert_task(folder: Path, out: Path, mc_only: bool) -> tuple:
    """Writes the task's JSONL files; returns (lines written, lines skipped, is multiple choice)."""
    written = skipped = with_options = total = 0
    rows_by_split = {}
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        if not path.is_file():
            continue
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                print(f"{path}:{number}: skipped: expected question<TAB>answer", file=sys.stderr)
                skipped += 1
                continue
            question, answer = unescape(fields[0]), fields[1].strip()
            row = {"input": question, "output": answer}
            options = parse_options(question, answer)
            total += 1
            if options is not None:
                with_options += 1
                if answer not in options:
                    print(f"{path}:{number}: skipped: answer {answer!r} is not among the options", file=sys.stderr)
                    skipped += 1
                    continue
                row["options"] = options
            rows.append(row)
        rows_by_split[split] = rows
    is_mc = total > 0 and 2 * with_options > total
    if mc_only and not is_mc:
        return 0, skipped, False
    for split, rows in rows_by_split.items():
        if is_mc:
            rows = [r for r in rows if "options" in r]  # abmll wants options on every line of an MC task
        else:
            for r in rows:
                r.pop("options", None)
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        with open(out / folder.name / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        written += len(rows)
    return written, skipped, is_mc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unifiedqa", required=True, type=Path, help="folder of UnifiedQA task folders")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tasks", nargs="*", help="task folders to convert (default: all)")
    ap.add_argument("--multiple-choice-only", action="store_true", help="skip tasks without option lists")
    args = ap.parse_args(argv)

    names = args.tasks or sorted(p.name for p in args.unifiedqa.iterdir()
                                 if p.is_dir() and any((p / f"{s}.tsv").is_file() for s in SPLITS))
    if not names:
        print(f"error: no UnifiedQA tasks in {args.unifiedqa}", file=sys.stderr)
        return 1
    status = 0
    for name in names:
        folder = args.unifiedqa / name
        if not any((folder / f"{s}.tsv").is_file() for s in SPLITS):
            print(f"error: {folder}: no train.tsv, dev.tsv or test.tsv", file=sys.stderr)
            status = 1
            continue
        written, skipped, is_mc = convert_task(folder, args.out, args.multiple_choice_only)
        kind = "multiple choice" if is_mc else "no option lists"
        note = "left out" if args.multiple_choice_only and not is_mc else f"{written} examples"
        print(f"{name}: {note} ({kind}{', %d lines skipped' % skipped if skipped else ''})")
    return status


if __name__ == "__main__":
    sys.exit(main())
