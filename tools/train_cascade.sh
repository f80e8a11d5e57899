#!/usr/bin/env bash
# Train the FaceCraft cascade: the three greedy stages (the separate baseline), then joint
# training from them (the shipped models); STEPS=joint_hardneg then runs the hard-negative
# experiment of MODEL_ZOO.md from the joint model. Each step is
# `tools/train_net.py --config-file configs/cascade/<step>.yaml`; a step whose model_final.pth
# exists is skipped, and an interrupted one resumes (--resume) from its last checkpoint.
# Extra arguments are passed to every step (e.g. SOLVER.MAX_ITER 100).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-"separate_x12 separate_x24 separate_x48 joint"}
for step in $STEPS; do
  out=$(grep -E '^OUTPUT_DIR' "configs/cascade/$step.yaml" | sed -E 's/.*"(.*)".*/\1/')
  if [ -f "$out/model_final.pth" ]; then
    echo "[train_cascade] $step: $out/model_final.pth exists, skipping"
    continue
  fi
  echo "[train_cascade] $step: start $(date -u +%FT%TZ)"
  start=$(date +%s)
  "$PY" tools/train_net.py --config-file "configs/cascade/$step.yaml" --resume DATASETS.TEST "()" "$@"
  echo "[train_cascade] $step: done in $(( $(date +%s) - start )) s"
done
