"""Shared fixtures of the Python tests: where the abmll binary and the source tree are (set by CTest)."""
import os
import pathlib
import subprocess

import pytest


@pytest.fixture(scope="session")
def abmll_bin() -> str:
    path = os.environ.get("ABMLL_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("ABMLL_BIN must name the built abmll binary (run through ctest or scripts/test.sh)")
    return path


@pytest.fixture(scope="session")
def source_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("ABMLL_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))


@pytest.fixture
def run_abmll(abmll_bin):
    """Runs abmll with the given arguments; returns the CompletedProcess (text mode)."""

    def run(*args, cwd=None, timeout=120):
        return subprocess.run([abmll_bin, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout)

    return run

