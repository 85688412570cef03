"""Evaluation (section 4): the metrics, per-image scoring, statistics with bootstrap CIs, the paper's tables
beside ours, the paper's reported numbers and the baselines.

- :mod:`~isfr.evaluation.metrics`: PSNR / SSIM / L1 (scikit-image), LPIPS, identity distance;
- :mod:`~isfr.evaluation.scoring`: one method over an evaluation set -> one row per image (:func:`evaluate`);
- :mod:`~isfr.evaluation.statistics`: per-bucket means with CIs, seed spread, paired comparisons;
- :mod:`~isfr.evaluation.tables`: Tables 1 and 2 beside ours, :func:`to_markdown`, :func:`write_table`;
- :mod:`~isfr.evaluation.paper_numbers`: the numbers the paper prints; :mod:`~isfr.evaluation.baselines`:
  the methods we score besides ISFRNet.

Evaluation never imports :mod:`isfr.training` (:data:`isfr.LAYERS`). The names below are the public API.
"""

from isfr.evaluation.metrics import PROTOCOL
from isfr.evaluation.scoring import (
    METRICS,
    NO_METRIC_MODELS,
    RAW_NOTE,
    ROW_COLUMNS,
    evaluate,
    provenance,
    read_csv,
    read_table,
    score_raw,
    write_csv,
)
from isfr.evaluation.statistics import (
    better,
    bootstrap_means,
    ci_text,
    duels,
    head_to_head,
    seed_spread,
    summarise,
    worst_pairs,
)
from isfr.evaluation.tables import (
    FLAGS,
    PSP_COMPOSITE,
    PSP_RAW,
    agreement_notes,
    comparison_footer,
    comparison_rows,
    ranking_agreement,
    table1,
    table2,
    to_markdown,
    write_duels,
    write_seed_spread,
    write_table,
)

__all__ = [
    "FLAGS", "METRICS", "PROTOCOL", "NO_METRIC_MODELS", "PSP_COMPOSITE", "PSP_RAW", "RAW_NOTE", "ROW_COLUMNS",
    "agreement_notes", "better", "bootstrap_means", "ci_text", "comparison_footer", "comparison_rows", "duels",
    "evaluate", "head_to_head", "provenance", "ranking_agreement", "read_csv", "read_table", "score_raw",
    "seed_spread", "summarise", "table1", "table2", "to_markdown", "worst_pairs", "write_csv", "write_duels",
    "write_seed_spread", "write_table",
]
