"""Shared data for the tests: small, generated, seeded."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def manifold():
    """400 rows of 8 features on a 2-dimensional surface, values in [0, 1]."""
    rng = np.random.default_rng(7)
    u, v = rng.uniform(size=(2, 400))
    x = np.stack([u, v, u * v, 0.5 * (u + v), 1 - u, v * v, u * u, 0.3 + 0.1 * u], axis=1)
    return x.astype(np.float32)


@pytest.fixture
def table():
    """A DataFrame with numbers, a categorical column, missing values and a label."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    n = 240
    region = rng.choice(["north", "south", "east"], n)
    amount = rng.gamma(2.0, 50.0, n) + (region == "north") * 40
    tenure = rng.integers(1, 60, n).astype(float)
    tenure[rng.choice(n, 12, replace=False)] = np.nan
    return pd.DataFrame({"amount": np.round(amount, 3), "tenure": tenure, "region": region})


def cli():
    """The command-line tool built by `cargo test` (or HOURGLASS_BIN)."""
    path = os.environ.get("HOURGLASS_BIN") or str(ROOT / "target" / "debug" / "hourglass")
    if not os.path.exists(path):
        path = shutil.which("hourglass")
    if path is None:
        pytest.fail("the hourglass binary is missing: run `cargo build` first (scripts/test does)")
    return path


def run_cli(*args, cwd, check=True):
    """Runs the command line; fails the test with its stderr if it fails (unless `check` is
    false: then the caller looks at the exit code)."""
    p = subprocess.run([cli(), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p
