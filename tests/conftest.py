from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests run on 2 CPU cores; one intra-op thread per test keeps timings steady.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def run_cli(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """The real `gankit` console entry point in a fresh process, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "gankit", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"gankit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, one sentence on stderr naming the problem, and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def mnist_classifier(tmp_path_factory):
    """One small mnist5k classifier (1 epoch) shared by every test that needs classifier metrics."""
    from gankit.config import DataConfig
    from gankit.metrics.classifier import train_classifier

    cache = tmp_path_factory.mktemp("cache")
    out = cache / "classifiers" / "mnist5k-28px-1ch.pt"
    meta = train_classifier(DataConfig(name="mnist5k"), out, epochs=1, log=lambda *_: None)
    return cache, out, meta


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory):
    """A random-weight TF-FID Inception file (Kaiming convolutions), loadable by gankit and torch-fidelity."""
    from inception_weights import write_random_inception

    return write_random_inception(tmp_path_factory.mktemp("inception") / "random-inception.pth")
