"""Tests of the data converters in scripts/data/ on tiny made-up inputs: what they write (abmll's JSONL format and
CrossFit layout, docs in src/data/jsonl_reader.h and tsv_reader.h), what they skip, and their messages."""
import json
import pathlib
import subprocess
import sys

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "data"


def run(script, *args):
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def read_jsonl(path):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:  # abmll's JSONL rules
        assert isinstance(r["input"], str) and r["input"].strip()
        assert isinstance(r["output"], str) and r["output"].strip()
        if "options" in r:
            assert len(r["options"]) >= 2 and r["output"] in r["options"]
    return rows


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_crossfit_layout_arranges_checks_and_copies_partitions(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "flat" / "sst_16_100_train.tsv", "good\tpositive\nbad\tnegative\n")
    write(raw / "nested" / "deeper" / "sst_16_100_test.tsv", "fine\tpositive\n")
    write(raw / "qa_32_100_train.tsv", "q1\ta1\talt\n")
    write(raw / "notes.txt", "not a task file")
    repo = tmp_path / "CrossFit"
    write(repo / "dataloader" / "custom_tasks_splits" / "p.json",
          json.dumps({"train": ["qa"], "dev": ["sst"], "test": []}))
    out = tmp_path / "out"
    r = run("crossfit_layout.py", "--data", raw, "--out", out, "--crossfit-repo", repo)
    assert r.returncode == 0, r.stderr
    assert "2 tasks, 3 files" in r.stdout
    assert (out / "sst" / "sst_16_100_train.tsv").read_text() == "good\tpositive\nbad\tnegative\n"
    assert (out / "sst" / "sst_16_100_test.tsv").is_file()
    assert (out / "qa" / "qa_32_100_train.tsv").is_file()
    assert json.loads((out / "partitions" / "p.json").read_text())["dev"] == ["sst"]

    # A partition naming a task without files, and a malformed line: reported, exit 1.
    write(repo / "dataloader" / "custom_tasks_splits" / "q.json", json.dumps({"train": ["qa", "gone"]}))
    write(raw / "bad_16_100_dev.tsv", "ok\tx\nno tab\n")
    r = run("crossfit_layout.py", "--data", raw, "--crossfit-repo", repo)
    assert r.returncode == 1
    assert f"{raw / 'bad_16_100_dev.tsv'}:2: expected input<TAB>output, found no tab" in r.stderr
    assert "q.json: 1 tasks without seed-100 files: gone" in r.stderr


def test_crossfit_layout_without_files_fails(tmp_path):
    r = run("crossfit_layout.py", "--data", tmp_path)
    assert r.returncode == 1
    assert "no CrossFit files" in r.stderr


def test_unifiedqa_to_jsonl(tmp_path):
    uqa = tmp_path / "uqa"
    write(uqa / "arc" / "train.tsv",
          "which is a mammal? \\n (a) shark (b) whale (c) trout\twhale\n"
          "what melts ice? \\n (a) salt (b) sand \\n roads are salted.\tsalt\n"
          "broken line without a tab\n"
          "which is a gas? \\n (a) iron (b) neon\targon\n")
    write(uqa / "arc" / "test.tsv", "the sun is a \\n (a) planet (b) star\tstar\n")
    write(uqa / "boolq" / "dev.tsv", "is it? \\n some context.\tyes\n")
    out = tmp_path / "out"
    r = run("unifiedqa_to_jsonl.py", "--unifiedqa", uqa, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = read_jsonl(out / "arc" / "train.jsonl")
    assert rows[0] == {"input": "which is a mammal?\n(a) shark (b) whale (c) trout", "output": "whale",
                       "options": ["shark", "whale", "trout"]}
    assert rows[1]["options"] == ["salt", "sand"]
    assert rows[1]["input"].endswith("\nroads are salted.")
    assert len(rows) == 2
    assert "train.tsv:3: skipped: expected question<TAB>answer" in r.stderr
    assert "train.tsv:4: skipped: answer 'argon' is not among the options" in r.stderr
    assert read_jsonl(out / "arc" / "test.jsonl")[0]["output"] == "star"
    assert read_jsonl(out / "boolq" / "dev.jsonl") == [{"input": "is it?\nsome context.", "output": "yes"}]

    out2 = tmp_path / "mc"
    r = run("unifiedqa_to_jsonl.py", "--unifiedqa", uqa, "--out", out2, "--multiple-choice-only")
    assert r.returncode == 0
    assert (out2 / "arc" / "train.jsonl").is_file()
    assert not (out2 / "boolq").exists()
    assert "boolq: left out" in r.stdout


def test_legalbench_to_jsonl(tmp_path):
    lb = tmp_path / "legalbench"
    write(lb / "hearsay" / "train.tsv", "answer\tindex\ttext\nYes\t0\tA said B.\nNo\t1\tA saw B.\n")
    write(lb / "hearsay" / "test.tsv", "answer\tindex\ttext\nNo\t0\tHe ran.\n\t1\tNo answer here.\n")
    write(lb / "contracts" / "train.tsv", "index\tclause\tquestion\tanswer\n0\tNo pets.\tPets allowed?\tNo\n")
    out = tmp_path / "out"
    r = run("legalbench_to_jsonl.py", "--legalbench", lb, "--out", out)
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out / "hearsay" / "train.jsonl") == [{"input": "A said B.", "output": "Yes"},
                                                           {"input": "A saw B.", "output": "No"}]
    assert read_jsonl(out / "hearsay" / "test.jsonl") == [{"input": "He ran.", "output": "No"}]
    assert "test.tsv:3: skipped: empty answer" in r.stderr
    assert read_jsonl(out / "contracts" / "train.jsonl") == [
        {"input": "clause: No pets.\nquestion: Pets allowed?", "output": "No"}]
    assert "hearsay: 3 examples, 2 distinct answers, 1 rows skipped" in r.stdout

    write(lb / "broken" / "train.tsv", "label\ttext\nx\ty\n")
    r = run("legalbench_to_jsonl.py", "--legalbench", lb, "--out", out, "--tasks", "broken")
    assert r.returncode == 1
    assert "no 'answer' column" in r.stderr


def test_chembench_to_jsonl(tmp_path):
    cb = tmp_path / "chembench"
    question = {"name": "q1", "examples": [{"input": "Symbol of sodium?",
                                            "target_scores": {"Na": 1, "S": 0, "So": 0}}]}
    write(cb / "inorganic" / "q1.json", json.dumps(question))
    write(cb / "inorganic" / "q2.json", json.dumps(
        {"examples": [{"input": "Two right?", "target_scores": {"a": 1, "b": 1}}]}))
    write(cb / "physical" / "q3.json", json.dumps({"examples": [{"input": "Mass of a proton?", "target": "1.67e-27"}]}))
    write(cb / "physical" / "more.json", json.dumps([
        {"examples": [{"input": "pH of water?", "target_scores": {"7": 1.0, "1": 0.0}}]}]))
    out = tmp_path / "out"
    r = run("chembench_to_jsonl.py", "--chembench", cb, "--out", out)
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out / "inorganic.jsonl") == [
        {"input": "Symbol of sodium?", "output": "Na", "options": ["Na", "S", "So"]}]
    assert read_jsonl(out / "physical.jsonl") == [{"input": "pH of water?", "output": "7", "options": ["7", "1"]}]
    assert "skipped 1 examples: no single right option" in r.stdout
    assert "skipped 1 examples: not multiple choice" in r.stdout

    # A Hugging Face export: JSONL, target_scores as a JSON string, topic from a field.
    hf = tmp_path / "hf.jsonl"
    write(hf, json.dumps({"subfield": "organic", "examples": [
        {"input": "Benzene formula?", "target_scores": json.dumps({"C6H6": 1, "CH4": 0})}]}) + "\n")
    r = run("chembench_to_jsonl.py", "--chembench", hf, "--out", tmp_path / "hf")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "hf" / "organic.jsonl")[0]["options"] == ["C6H6", "CH4"]
