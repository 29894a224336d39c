#!/usr/bin/env python3
"""Splits a folder of JSONL tasks (LegalBench, ChemBench) into meta-training and held-out tasks for the paper tables.

The paper's split of LegalBench and ChemBench into meta-training and test tasks is not known (ABMLL.md 7); this is
the project's documented guess. Input: a folder as scripts/data/legalbench_to_jsonl.py or chembench_to_jsonl.py
writes it (tasks as {name}.jsonl, or {name}/ holding train/dev/test.jsonl). Output: a new folder (the input is not
touched) that abmll reads with data.format: jsonl, holding
  paper-split.json   {"train": [...], "test": [...]}: the partition the paper configs name (data.partition);
  one entry per task:
    held-out tasks     a symbolic link to the task as it is (support from its train split, queries from test);
    training tasks     {name}.jsonl, every split of the task in one pool. abmll draws a training task's support
                       and query sets from its train split only, and LegalBench's train splits hold a handful of
                       examples; a training task's test split is never scored, so it is training data here.
Rule (deterministic, for a given set of tasks): among the tasks that can be held out, taken in sorted order,
every --every-th (the 1st, the (1+every)th, ...) is held out; the others are training tasks. A task can be held
out when its support split holds at least --shots examples (plus one query when it is a single pool) and it is
scorable: its lines give options, or it has at most 64 distinct answers (abmll's classification limit).

  python3 scripts/paper/prepare_split.py --data data/legalbench --out runs/paper/data/legalbench --shots 4
"""
import argparse
import json
import os
import sys
from pathlib import Path

SPLITS = ("train", "dev", "test")
MAX_LABELS = 64  # abmll treats a task with more distinct answers and no options as generation (not scorable)


def task_files(path: Path) -> dict:
    """{split: file} of a task: a single pool ({name}.jsonl, as 'pool') or a folder's split files."""
    if path.is_file():
        return {"pool": path}
    return {s: path / f"{s}.jsonl" for s in SPLITS if (path / f"{s}.jsonl").is_file()}


def read_lines(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def held_out_ok(files: dict, shots: int) -> bool:
    """Whether the task can be a held-out task: enough support examples, and answers scorable by options."""
    lines = {split: read_lines(path) for split, path in files.items()}
    if "pool" in lines:
        support_size, needed = len(lines["pool"]), shots + 1
    else:
        support = "train" if "train" in lines else next(iter(lines))
        support_size, needed = len(lines[support]), shots
        if not any(s != support for s in lines):  # one split only: support and queries share it
            needed = shots + 1
    if support_size < needed:
        return False
    answers, with_options = set(), False
    for text in (line for split_lines in lines.values() for line in split_lines):
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            return False  # abmll will name the bad line when it reads the task
        with_options = with_options or bool(row.get("options"))
        answers.add(row.get("output"))
    return with_options or len(answers) <= MAX_LABELS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="folder of JSONL tasks")
    ap.add_argument("--out", required=True, type=Path, help="folder to write (must not hold other files)")
    ap.add_argument("--shots", type=int, default=4, help="support examples a held-out task needs (data.shots)")
    ap.add_argument("--every", type=int, default=4, help="hold out every N-th eligible task (default 4: a quarter)")
    args = ap.parse_args(argv)
    if args.every < 2 or args.shots < 0:
        print("error: --every must be at least 2 and --shots at least 0", file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"error: {args.data}: not a folder of JSONL tasks", file=sys.stderr)
        return 2
    tasks = {}
    for entry in sorted(args.data.iterdir()):
        name = entry.stem if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix != ".jsonl":
            continue
        files = task_files(entry)
        if files:
            tasks[name] = files
    if not tasks:
        print(f"error: {args.data}: no JSONL tasks ({{name}}.jsonl or {{name}}/train.jsonl ...)", file=sys.stderr)
        return 2

    eligible = [name for name in sorted(tasks) if held_out_ok(tasks[name], args.shots)]
    test = eligible[::args.every]
    train = [name for name in sorted(tasks) if name not in set(test)]
    if not test or not train:
        print(f"error: {args.data}: {len(tasks)} tasks, {len(eligible)} of them can be held out: too few to split "
              f"into training and held-out tasks", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    for name in train + test:  # rewrite entries of an earlier run; never touch anything else
        for stale in (args.out / name, args.out / f"{name}.jsonl"):
            if stale.is_symlink() or stale.is_file():
                stale.unlink()
    for name in test:
        source = args.data / name if (args.data / name).is_dir() else args.data / f"{name}.jsonl"
        link = args.out / source.name
        os.symlink(source.resolve(), link, target_is_directory=source.is_dir())
    for name in train:
        files = tasks[name]
        if "pool" in files:
            os.symlink(files["pool"].resolve(), args.out / f"{name}.jsonl")
            continue
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for split in SPLITS:
                if split in files:
                    for line in read_lines(files[split]):
                        out.write(line + "\n")
    with open(args.out / "paper-split.json", "w", encoding="utf-8") as f:
        json.dump({"train": train, "test": test}, f, indent=2)
        f.write("\n")
    print(f"{args.out}: {len(train)} training and {len(test)} held-out tasks ({len(tasks) - len(eligible)} could "
          f"not be held out)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
