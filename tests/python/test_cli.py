"""The command line as a user meets it: help, exit codes (0 ok, 2 bad input, 1 failure), messages naming the
file and line, and the run folder meta-train writes."""
import json
import pathlib

import pytest
import yaml

SUBCOMMANDS = ["meta-train", "adapt", "evaluate", "calibrate", "inspect", "tokenize", "logits", "make-demo"]

MINIMAL = "model:\n  path: /models/m\ndata:\n  path: /data/d\n"


def test_help_lists_every_subcommand(run_abmll):
    result = run_abmll("--help")
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(run_abmll, name):
    result = run_abmll(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout or "usage" in result.stdout.lower()


def test_usage_errors_exit_2(run_abmll):
    assert run_abmll().returncode == 2                       # no subcommand
    assert run_abmll("train").returncode == 2                # unknown subcommand
    assert run_abmll("meta-train", "--bogus").returncode == 2
    assert run_abmll("calibrate").returncode == 2            # required flags missing
    for flag in (["--profile-memory"], ["--profile-steps", "2"]):  # profiling options without --profile-step
        result = run_abmll("meta-train", "--config", "configs/demo.yaml", *flag)
        assert result.returncode == 2 and "requires --profile-step" in result.stderr
    for value in ("0", "-3", "2x"):
        result = run_abmll("meta-train", "--config", "configs/demo.yaml", "--max-steps", value)
        assert result.returncode == 2
        assert f"--max-steps: must be a whole number of at least 1, got '{value}'" in result.stderr


def test_help_config_lists_keys(run_abmll):
    result = run_abmll("meta-train", "--help-config")
    assert result.returncode == 0
    for key in ["model.path", "outer.beta", "posterior.family", "inner.steps", "eval.bins"]:
        assert key in result.stdout


def test_bad_config_names_file_and_line(run_abmll, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(MINIMAL + "outer:\n  betta: 1e-7\n")
    result = run_abmll("meta-train", "--config", config, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert f"{config}:6:3: unknown key 'outer.betta' (did you mean 'outer.beta'?)" in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a refused config

    result = run_abmll("meta-train", "--config", tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "does not exist" in result.stderr

    config.write_text(MINIMAL)
    result = run_abmll("meta-train", "--config", config, "--set", "lora.rank=-3")
    assert result.returncode == 2
    assert "--set lora.rank=-3: must be between 1 and 4096, got -3" in result.stderr


def test_meta_train_writes_resolved_config_and_report(run_abmll, tmp_path, source_dir):
    assert run_abmll("make-demo", "--out", tmp_path / "demo").returncode == 0
    out = tmp_path / "run"
    paths = ["--set", f"model.path={tmp_path / 'demo/model'}", "--set", f"data.path={tmp_path / 'demo/data'}",
             "--set", f"data.partition={tmp_path / 'demo/data/partitions/demo.json'}"]
    result = run_abmll("meta-train", "--config", source_dir / "configs/demo.yaml", "--set", "outer.beta=5e-10",
                       *paths, "--out", out, "--max-steps", "2")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["outer"]["beta"] == 5e-10
    assert resolved["model"]["path"] == str(tmp_path / "demo/model")
    assert resolved["eval"]["bins"] == 15  # defaults are filled in

    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 1
    assert report["command"] == "meta-train"
    assert report["config"] == json.loads(json.dumps(resolved))
    assert report["results"]["steps_done"] == 2
    assert report["device"]["name"] == "cpu"

    # The echoed config is itself a valid config that resolves to the same values.
    again = run_abmll("meta-train", "--config", out / "config.yaml", "--out", tmp_path / "again", "--max-steps", "1")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again/config.yaml").read_text() == (out / "config.yaml").read_text()


def test_gpu_request_without_gpu_is_a_clear_error(run_abmll, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(MINIMAL + "run:\n  device: cuda\n")
    result = run_abmll("meta-train", "--config", config, "--out", tmp_path / "run")
    if result.returncode == 0:
        pytest.skip("a GPU is present")
    assert result.returncode == 2
    assert "run.device is 'cuda' but" in result.stderr


def test_version(run_abmll):
    result = run_abmll("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("abmll ")
