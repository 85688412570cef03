"""benchmarks/gpu_check.py: the ``--dry`` CPU run passes and writes every section; without CUDA it fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SECTIONS = ("## 1. Placement", "## 2. Mixed precision", "## 3. DDP", "## 4. Inference", "## 5. Training",
            "## 6. Mini-training", "## 7. Projected wall time")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_dry_run_passes_and_reports_every_section(tmp_path: Path) -> None:
    p = _run("--dry", "--out", str(tmp_path), timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    reports = list(tmp_path.glob("gpu_*.md"))
    assert len(reports) == 1, sorted(tmp_path.iterdir())
    text = reports[0].read_text()
    for heading in SECTIONS:
        assert heading in text, heading
    assert "FAIL" not in text
    assert "--dry substitutions" in text
    assert not (REPO / "benchmarks" / "results" / reports[0].name).exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available: the no-CUDA failure cannot be shown here")
def test_without_cuda_and_without_dry_it_fails_loudly(tmp_path: Path) -> None:
    p = _run("--out", str(tmp_path), timeout=120)
    assert p.returncode != 0
    msg = (p.stderr + p.stdout).strip()
    assert len(msg.splitlines()) == 1, msg
    assert "CUDA is not available" in msg and "--dry" in msg
    assert not list(tmp_path.iterdir())
