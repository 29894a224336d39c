#!/usr/bin/env python3
"""Checks CrossFit's generated few-shot data and arranges it the way abmll reads it.

abmll reads {data}/{task}/{task}_{k}_{seed}_{train|dev|test}.tsv (the layout CrossFit's tasks/_build_gym.py writes)
and partitions from {data}/partitions/{name}.json. This script
  * finds every CrossFit file under --data (any depth, so flattened or nested copies work too),
  * checks each line (input<TAB>output[<TAB>output...], non-empty input and answer, UTF-8),
  * with --out, copies the files into {out}/{task}/ (or, with --link, symlinks them),
  * with --crossfit-repo, copies CrossFit's partition files (dataloader/custom_tasks_splits/*.json) into
    {out or data}/partitions/ and reports the tasks each partition names that the data lacks for --seed.
Exit status 1 when a file has malformed lines or a partition names missing tasks (still writing what it can).

  python scripts/data/crossfit_layout.py --data ~/CrossFit/data --crossfit-repo ~/CrossFit --out data/crossfit
"""
import argparse
import json
import os
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

FILE_RE = re.compile(r"^(?P<task>.+)_(?P<k>\d+)_(?P<seed>\d+)_(?P<split>train|dev|test)\.tsv$")


def check_file(path: Path, max_report: int = 3) -> list:
    """Problems of a CrossFit TSV file, as 'file:line: problem' strings."""
    problems = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip(b"\n").rstrip(b"\r")
            if not line:
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{path}:{number}: invalid UTF-8 at byte {e.start + 1} of the line")
                continue
            fields = text.split("\t")
            if len(fields) < 2:
                problems.append(f"{path}:{number}: expected input<TAB>output, found no tab")
            elif not fields[0].strip():
                problems.append(f"{path}:{number}: empty input")
            elif not fields[1].strip():
                problems.append(f"{path}:{number}: empty output")
    return problems[:max_report] + ([f"{path}: ... {len(problems) - max_report} more"] if len(problems) > max_report else [])


def find_files(root: Path) -> dict:
    """{task: [paths]} of every CrossFit file under root."""
    tasks = defaultdict(list)
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            m = FILE_RE.match(name)
            if m:
                tasks[m.group("task")].append(Path(dirpath) / name)
    return tasks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="folder holding CrossFit's generated TSV files")
    ap.add_argument("--out", type=Path, help="write abmll's layout here (default: check --data in place)")
    ap.add_argument("--link", action="store_true", help="symlink instead of copying")
    ap.add_argument("--crossfit-repo", type=Path, help="CrossFit checkout, for its partition files")
    ap.add_argument("--seed", type=int, default=100, help="seed whose files partitions are checked against")
    args = ap.parse_args(argv)

    tasks = find_files(args.data)
    if not tasks:
        print(f"error: no CrossFit files (*_{{k}}_{{seed}}_{{train,dev,test}}.tsv) under {args.data}", file=sys.stderr)
        return 1
    failed = False
    for task in sorted(tasks):
        for path in sorted(tasks[task]):
            for problem in check_file(path):
                print(problem, file=sys.stderr)
                failed = True
    out = args.out or args.data
    if args.out and args.out.resolve() == args.data.resolve():
        args.out = None
    if args.out:
        for task, paths in tasks.items():
            (out / task).mkdir(parents=True, exist_ok=True)
            for path in paths:
                target = out / task / path.name
                if target.exists() or target.is_symlink():
                    target.unlink()
                if args.link:
                    target.symlink_to(path.resolve())
                else:
                    shutil.copyfile(path, target)
    n_files = sum(len(p) for p in tasks.values())
    print(f"{len(tasks)} tasks, {n_files} files{' arranged in ' + str(out) if args.out else ''}")

    if args.crossfit_repo:
        splits = args.crossfit_repo / "dataloader" / "custom_tasks_splits"
        partitions = sorted(splits.glob("*.json"))
        if not partitions:
            print(f"error: no partition files in {splits}", file=sys.stderr)
            return 1
        (out / "partitions").mkdir(parents=True, exist_ok=True)
        have = {t for t, paths in tasks.items()
                if any(FILE_RE.match(p.name).group("seed") == str(args.seed) for p in paths)}
        for part in partitions:
            shutil.copyfile(part, out / "partitions" / part.name)
            lists = json.loads(part.read_text(encoding="utf-8"))
            named = {t for key in ("train", "dev", "test") for t in lists.get(key) or []}
            missing = sorted(named - have)
            if missing:
                failed = True
                print(f"{part.name}: {len(missing)} tasks without seed-{args.seed} files: {', '.join(missing)}",
                      file=sys.stderr)
        print(f"{len(partitions)} partitions copied to {out / 'partitions'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
