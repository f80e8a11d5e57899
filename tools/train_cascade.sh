#!/usr/bin/env bash
# Train the FaceCraft cascade from scratch: for each greedy stage, cut its crop cache (the x24
# and x48 caches mine hard negatives with the stages trained before), train the stage; then
# joint training of x24 and x48 (x12 kept) from the separate cascade on all three caches (the
# shipped models), and the matched-budget greedy control (separate_x48_long).
#
#   DETECTRON2_DATASETS=../data/train_root tools/train_cascade.sh
#
# Each step is skipped when its output exists (a cache's cache.json, a stage's
# model_final.pth); an interrupted stage resumes (--resume) from its last checkpoint, so the
# script can simply be run again. CACHE_ROOT (default ../data/cascade_cache, outside the repo)
# holds the caches. A step "cache:<config>" (e.g. cache:separate_x48_rnet) cuts the cache that
# config trains on, mined with its MODEL.WEIGHTS. Extra arguments are passed to every training step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE_ROOT=${CACHE_ROOT:-../data/cascade_cache}
STEPS=${STEPS:-"cache:x12 separate_x12 cache:x24 separate_x24 cache:x48 separate_x48 joint separate_x48_long"}
stamp() { date -u +%FT%TZ; }
out_dir() { grep -E '^OUTPUT_DIR' "configs/cascade/$1.yaml" | sed -E 's/.*"(.*)".*/\1/'; }
caches() {  # the config's CACHE_DIRS, moved under CACHE_ROOT
  local dirs
  dirs=$("$PY" -c "import sys; from facecraft_d2.config import build_config
c = build_config(sys.argv[1]); print(','.join(repr(sys.argv[2] + '/' + d.rstrip('/').split('/')[-1]) for d in c.MODEL.FACECRAFT.DATA.CACHE_DIRS))" \
    "configs/cascade/$1.yaml" "$CACHE_ROOT")
  echo "[$dirs]"
}
for step in $STEPS; do
  start=$(date +%s)
  if [[ $step == cache:* ]]; then
    target=${step#cache:}
    weights=()
    if [ -f "configs/cascade/$target.yaml" ]; then
      # cache:<config>: the cache that config trains on (its first CACHE_DIRS entry, under
      # CACHE_ROOT), mined with its own MODEL.WEIGHTS (the earlier stages it builds on)
      cfg=$target
      dir=$(caches "$cfg" | sed -E "s/^\['([^']*)'.*/\1/")
    else
      # cache:x12 / x24 / x48: the shipped recipe's caches, mined with the stage before
      cfg=separate_$target
      dir="$CACHE_ROOT/$target"
      prev=$(case $target in x24) echo separate_x12;; x48) echo separate_x24;; *) echo "";; esac)
      if [ -n "$prev" ]; then weights=(MODEL.WEIGHTS "$(out_dir "$prev")/model_final.pth"); fi
    fi
    if [ -f "$dir/cache.json" ]; then echo "[train_cascade] $step: $dir exists, skipping"; continue; fi
    rm -rf "$dir"
    echo "[train_cascade] $step: start $(stamp)"
    "$PY" tools/build_crop_cache.py --config-file "configs/cascade/$cfg.yaml" \
      --out "$dir" "${weights[@]}"
  else
    out=$(out_dir "$step")
    if [ -f "$out/model_final.pth" ]; then echo "[train_cascade] $step: $out/model_final.pth exists, skipping"; continue; fi
    echo "[train_cascade] $step: start $(stamp)"
    "$PY" tools/train_net.py --config-file "configs/cascade/$step.yaml" --resume DATASETS.TEST "()" \
      MODEL.FACECRAFT.DATA.CACHE_DIRS "$(caches "$step")" "$@"
  fi
  echo "[train_cascade] $step: done in $(( $(date +%s) - start )) s"
done
