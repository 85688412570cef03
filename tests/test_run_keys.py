"""Run keys do not change: every run folder the code names, for each preset and variant, checked
against tests/fixtures/run_keys.json (written by ``python tests/test_run_keys.py --write`` from the code
of 2026-12-06, commit 193e59e, before the package was split into subpackages).

The folders are computed on synthetic faces (no data root), with no pretrained file present (an empty
torch hub folder), so the list is the same on every machine. A run that started before a change of
this list would not be found after it: its checkpoints would be silently ignored."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "run_keys.json"
PRESETS = ("smoke", "small", "paper")
#: customised presets, so the hash of overrides (run_key) is pinned too
CUSTOM = {"small@sfr.ngf=16": ("small", {"sfr.ngf": 16}),
          "smoke@schedule.ifr_steps=7": ("smoke", {"schedule.ifr_steps": 7}),
          "smoke@loss.masked_l1_norm=hole": ("smoke", {"loss.masked_l1_norm": "hole"})}


def compute() -> dict[str, dict[str, str]]:
    """``{preset: {label: run folder relative to the runs folder}}`` from the current code."""
    from isfr.experiments.config import get_preset
    from isfr.experiments.ladder import RUNGS, ladder_preset, rung_dir
    from isfr.core.paths import runs_dir
    from isfr.experiments.runs import VARIANTS, ablation_variants, run_dir, stage1_runs, stage_runs, variant_preset

    def rel(p: Path) -> str:
        return p.relative_to(runs_dir("smoke").parent).as_posix()

    presets = {name: get_preset(name) for name in PRESETS}
    presets.update({label: get_preset(base, **ov) for label, (base, ov) in CUSTOM.items()})
    out: dict[str, dict[str, str]] = {}
    for label, P in presets.items():
        keys = {f"stage1/{r}": rel(run_dir(P, r)) for r in stage1_runs(P)}
        keys["unet"] = rel(run_dir(P, "unet"))
        for name in VARIANTS:
            V = variant_preset(P, name)
            for budget in ("main", "ablation"):
                for kind, (run, _) in stage_runs(P, name, budget).items():
                    # the pipeline trains IFR/SFR runs with the variant's preset
                    keys[f"{name}/{budget}/{kind}"] = rel(run_dir(V, run))
        keys["ablation_variants"] = ",".join(ablation_variants(P))
        out[label] = keys
    L = ladder_preset(None, "small")
    out["ladder/small"] = {name: rel(rung_dir(L, r)) for name, r in RUNGS.items()}
    return out


@pytest.fixture()
def hermetic_keys(monkeypatch, tmp_path):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG file: no weights in the key
    import torch.hub
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)


def test_run_keys_match_golden_list(hermetic_keys):
    want = json.loads(FIXTURE.read_text())
    got = compute()
    assert got.keys() == want.keys()
    for label in want:
        diff = {k: (want[label].get(k), got[label].get(k)) for k in want[label].keys() | got[label].keys()
                if want[label].get(k) != got[label].get(k)}
        assert not diff, f"run folders of {label} changed (golden, now): {diff}"


def test_golden_list_is_relative_and_complete():
    want = json.loads(FIXTURE.read_text())
    assert {"smoke", "small", "paper", "ladder/small"} <= want.keys()
    folders = [v for keys in want.values() for k, v in keys.items() if k != "ablation_variants"]
    assert all(not Path(v).is_absolute() and v.count("/") >= 2 for v in folders)
    assert want["smoke"]["full/main/ifr"].endswith("/ifr") and want["smoke"]["full/main/ifr"].startswith("smoke/synthetic-")


def test_repo_root_is_the_repository_root(monkeypatch):
    """runs/ and weights/ stay at the repository's top, wherever paths.py sits in the package."""
    from isfr.core.paths import REPO_ROOT, runs_dir

    repo = Path(__file__).resolve().parents[1]
    assert REPO_ROOT == repo and (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "isfr").is_dir()
    monkeypatch.delenv("ISFR_RUNS_DIR", raising=False)
    assert runs_dir("smoke") == repo / "runs" / "smoke"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    os.environ.pop("ISFR_DATA_ROOT", None)
    os.environ["TORCH_HOME"] = tempfile.mkdtemp()
    os.environ.setdefault("ISFR_RUNS_DIR", tempfile.mkdtemp())
    FIXTURE.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}")
