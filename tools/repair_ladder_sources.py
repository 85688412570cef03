"""Complete the provenance of the committed ladder scores (a one-off repair of 2026-12-04; safe to rerun).

The rungs scored before commit 3c96da8 wrote ``source`` = "measured here (preset ?, 64 px, celeba data, 4680 pairs,
steps ?, ...)" in ``figures/<preset>/ladder_runs/<rung>/val_scores.csv.gz``: ``isfr.experiments.ladder.score_rung`` did not
pass what it knew. Each file is rewritten with the preset, the data tag and the steps and val-best step scored,
read from the rung's own committed ``config.json`` and ``done.json`` (hardware and commit are kept as written);
scores are untouched. ``score_rung`` now writes the complete line itself (``isfr.experiments.ladder.rung_source``).

Usage: ``python tools/repair_ladder_sources.py [figures/small]``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from isfr.evaluation import read_csv, write_csv

OLD = re.compile(r"^measured here \(preset \?, (\d+) px, (\w+) data, (\d+) pairs, steps \?, (.+), commit ([\w-]+)\)$")


def repair(folder: Path) -> list[str]:
    done_names = []
    for scores in sorted(folder.glob("ladder_runs/*/val_scores.csv.gz")):
        run = scores.parent
        df = read_csv(scores)
        sources = set(df["source"])
        if len(sources) != 1 or not (m := OLD.match(next(iter(sources)))):
            continue  # already complete, or not the old form
        px, _, pairs, hw, commit = m.groups()
        cfg, done = json.loads((run / "config.json").read_text()), json.loads((run / "done.json").read_text())
        tag = cfg["config"]["data_identity"]["tag"]
        loss = cfg["config"]["rung"]["loss"]
        vgg = any(loss.get(k, 0) for k in ("lambda4_perceptual", "lambda5_style"))
        line = (f"measured here ({cfg['preset']}, {px} px, {tag}, {pairs} pairs, rung {run.name}, {done['step']} steps "
                f"(batch {cfg['loop_config']['batch_size']}), val-best checkpoint step {done['best']['step']}, {hw}, "
                f"commit {commit})" + ("; random VGG features" if vgg else ""))
        df["source"] = line
        write_csv(df, scores)
        done_names.append(f"{run.name}: {line}")
    return done_names


if __name__ == "__main__":
    for line in repair(Path(sys.argv[1] if len(sys.argv) > 1 else "figures/small")):
        print(line)
