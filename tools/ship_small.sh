#!/usr/bin/env bash
# Ship a finished `small` main-model training as weights/isfrnet_small.pt, and rescore what depends on it.
#
#   tools/ship_small.sh prepare ARCHIVE [LOG]    # then read the diff and commit it
#   tools/ship_small.sh rescore ARCHIVE    # on that clean commit; then read the diff and commit it
#
# Needs ISFR_RUNS_DIR (holding the finished runs) and ISFR_DATA_ROOT (the CelebA subset and the NVIDIA masks), and
# the repository's venv active. ARCHIVE names the folder of figures/small/archive/ that receives the results being
# replaced, e.g. 2026-12-04-first-training; LOG, the training process's own output, is copied beside the runs'
# records. Nothing is committed here.
#
# prepare: (1) checks a clean work tree, the data root and that stylegan, psp, ifr and sfr finished; (2) copies the
# tables and per-image scores being replaced to the archive and moves the replaced main-model logs there (git mv);
# (3) copies the new runs' records into figures/small/training_logs/; (4) compares the two trainings' logs step by
# step (figures/small/reproducibility.{md,png}); (5) exports weights/isfrnet_small.pt and writes its sha256 into
# isfr/models/shipped.py; (6) rewrites training_record.{csv,md} with the new main runs.
# rescore: (7) reruns notebooks 01-04, 06 and 07 at small on the clean commit (06 beside the others); (8) the paired difference of the two
# trainings on val and test (figures/small/retrain_vs_first_{val,test}.{csv,md}); (9) the model card.
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: tools/ship_small.sh prepare|rescore ARCHIVE}
archive_name=${2:?usage: tools/ship_small.sh prepare|rescore ARCHIVE}
: "${ISFR_RUNS_DIR:?set ISFR_RUNS_DIR to the runs folder of the training}"
: "${ISFR_DATA_ROOT:?set ISFR_DATA_ROOT to the data root (celeba/, nvidia_irregular_masks/)}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MPLBACKEND=Agg
FIG=figures/small
ARCHIVE=$FIG/archive/$archive_name
TAG=$(python -c "from isfr.experiments.config import get_preset; from isfr.experiments.runs import data_tag, with_data_root; print(data_tag(with_data_root(get_preset('small'), None)))")
RUNS=$ISFR_RUNS_DIR/small/$TAG
MAIN="stylegan psp ifr sfr"
REPLACED="comparison_per_image.csv.gz val_per_image.csv.gz final_table.csv final_table.md table2_comparison.csv
table2_comparison.md test_head_to_head.csv test_head_to_head.md val_isfrnet_vs_biharmonic.csv
val_isfrnet_vs_biharmonic.md metrics_by_bucket.csv training_record.csv training_record.md"

clean() { [ -z "$(git status --porcelain)" ] || { echo "the work tree is not clean: commit or stash first" >&2; exit 2; }; }

if [ "$phase" = prepare ]; then
  clean
  for r in $MAIN; do
    [ -f "$RUNS/$r/done.json" ] || { echo "$RUNS/$r has not finished (no done.json): resume its training" >&2; exit 2; }
  done
  if [ ! -d "$ARCHIVE" ]; then
    mkdir -p "$ARCHIVE/training_logs"
    for f in $REPLACED; do cp "$FIG/$f" "$ARCHIVE/$f"; done
    for r in $MAIN main_chain.log; do git mv "$FIG/training_logs/$r" "$ARCHIVE/training_logs/$r"; done
  fi
  python tools/copy_run_logs.py "$RUNS" "$FIG/training_logs" ${3:+--extra "$3"}
  python tools/compare_logs.py "$FIG/training_logs" "$ARCHIVE/training_logs" --out "$FIG/reproducibility.md" \
    --plot "$FIG/reproducibility.png" --new-label "shipped model" --old-label "$archive_name" >/dev/null
  mkdir -p weights
  isfr export --preset small -o weights/isfrnet_small.pt
  sha=$(sha256sum weights/isfrnet_small.pt | cut -d' ' -f1)
  sed -i "s/^SHIPPED_SHA256 = .*/SHIPPED_SHA256 = \"$sha\"/" isfr/models/shipped.py
  python - <<'EOF'
from isfr.evaluation import write_table
from isfr.experiments.config import get_preset
from isfr.experiments.experiment import training_record
from isfr.experiments.runs import with_data_root

P = with_data_root(get_preset("small"), None)
write_table(training_record(P), "figures/small/training_record", heading=f"Training runs of preset {P.name!r}")
EOF
  echo "prepared: weights/isfrnet_small.pt sha256 $sha; read \`git status\` and the diff, commit, then: $0 rescore $archive_name"
elif [ "$phase" = rescore ]; then
  clean
  grep -q '^SHIPPED_SHA256 = "[0-9a-f]\{64\}"' isfr/models/shipped.py || { echo "run \`$0 prepare\` first" >&2; exit 2; }
  # two processes, one per core: notebook 06 (the test split, the longest) beside 01-04 and 07
  logs=$(mktemp -d)
  head="(commit $(git rev-parse --short HEAD), clean, $(date -u +%FT%TZ)"
  isfr reproduce --preset small --only 06 > "$logs/06.log" 2>&1 & pid=$!
  isfr reproduce --preset small --only 01 02 03 04 07 > "$logs/rest.log" 2>&1 || { cat "$logs/rest.log" >&2; exit 1; }
  wait $pid || { cat "$logs/06.log" >&2; exit 1; }
  { echo; echo "# isfr reproduce --preset small --only 01 02 03 04 07   $head, beside 06)"; grep '^\[isfr reproduce\]' "$logs/rest.log"
    echo; echo "# isfr reproduce --preset small --only 06   $head, beside 01-04 and 07)"; grep '^\[isfr reproduce\]' "$logs/06.log"
  } | tee -a $FIG/reproduce.log
  for split in val test; do
    f=$([ $split = val ] && echo val_per_image.csv.gz || echo comparison_per_image.csv.gz)
    python tools/compare_trainings.py "$ARCHIVE/$f" "$FIG/$f" --out "$FIG/retrain_vs_first_$split" \
      --old-label "first training" --new-label "shipped model"
  done
  python tools/model_card.py
  echo "rescored: read the diff (tables, figures, weights/README.md), update README.md and docs/results.md, commit"
else
  echo "usage: tools/ship_small.sh prepare|rescore ARCHIVE" >&2; exit 2
fi
