"""The smoke version of scripts/bench.py (slow, `--run-slow`): every configuration runs and the fast paths
are fast. Speed ratios on a shared 2-core machine are measurements, not tests, so this stays out of the
default run; the figures in the README come from the full script."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import REPO


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path, shared: Path) -> None:
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--smoke", "--clips", str(tmp_path / "clips"),
         "--exports", str(tmp_path / "exports"), "--json", str(tmp_path / "bench.json")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    speeds = dict(re.findall(r"^  (\S.*?)\s{2,}(\d+\.\d+)\s", result.stdout, flags=re.M))
    assert len(speeds) == 11, result.stdout
    naive = float(speeds["naive loop (PyTorch)"])
    # Deliberately loose floors: CI machines are noisy; the full run measures the real ratios.
    assert float(speeds["scan keyframes, OpenVINO FP32"]) > 5 * naive
    assert float(speeds["scan fps=2, OpenVINO FP32"]) > float(speeds["scan fps=2, PyTorch"])
    assert "best keyframes:" in result.stdout and (tmp_path / "bench.json").exists()
