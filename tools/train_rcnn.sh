#!/usr/bin/env bash
# Train RPN + Fast R-CNN for faces by one of the two procedures of FaceCraft Table 1:
#   tools/train_rcnn.sh two_step   # RPN; its proposals; joint network fine-tuned from the RPN
#   tools/train_rcnn.sh four_step  # Ren et al.: RPN; Fast R-CNN; RPN on fixed convs; Fast R-CNN
#   tools/train_rcnn.sh two_step_R18   # two_step on Detectron2's ResNet-18 (configs/rcnn/joint_R18.yaml)
# Both procedures run 10,000 iterations of 2 images in all (two_step: 5,000 + 5,000; four_step:
# 5,000 + 2,500 + 1,250 + 1,250), on the same data, schedule shape, losses, NMS and proposals.
# Each training step is `tools/train_net.py --config-file configs/rcnn/steps/<step>.yaml`; after
# an RPN step its proposals on the training images are dumped (tools/dump_proposals.py) and its
# recall of the held-out WIDER train faces of at least 24 px is logged (tools/proposal_recall.py:
# a from-scratch ZF RPN covers 19% of FDDB's faces after 2,000 iterations). Step 1
# (configs/rcnn/steps/rpn.yaml) is the same run in both procedures. A step whose
# model_final.pth (or proposal file) exists is skipped, and an interrupted one resumes
# (--resume) from its last checkpoint. Extra arguments go to every training step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
case "${1:-}" in
  two_step) STEPS="rpn two_step_joint" ;;
  two_step_R18) STEPS="rpn_R18 two_step_joint_R18" ;;
  four_step) STEPS="rpn four_step_frcnn four_step_rpn_shared four_step_frcnn_shared" ;;
  *) echo "usage: $0 two_step|four_step|two_step_R18 [KEY VALUE ...]" >&2; exit 2 ;;
esac
shift
for step in $STEPS; do
  cfg="configs/rcnn/steps/$step.yaml"
  # the resolved config's OUTPUT_DIR, and whether the step trains the RPN alone
  read -r out rpn_only < <("$PY" -c "import sys; from facecraft_d2.config import build_config
c = build_config(sys.argv[1]); print(c.OUTPUT_DIR, list(c.MODEL.JOINT_RCNN.TRAIN_BRANCHES) == ['rpn'])" "$cfg")
  if [ -f "$out/model_final.pth" ]; then
    echo "[train_rcnn] $step: $out/model_final.pth exists, skipping"
  else
    echo "[train_rcnn] $step: start $(date -u +%FT%TZ)"
    start=$(date +%s)
    "$PY" tools/train_net.py --config-file "$cfg" --resume DATASETS.TEST "()" "$@"
    echo "[train_rcnn] $step: done in $(( $(date +%s) - start )) s"
  fi
  if [ "$rpn_only" = True ] && [ ! -f "$out/proposals_train.pkl" ]; then
    echo "[train_rcnn] $step: proposals on the training images, start $(date -u +%FT%TZ)"
    start=$(date +%s)
    "$PY" tools/dump_proposals.py --config-file "$cfg" --output "$out/proposals_train.pkl"
    echo "[train_rcnn] $step: proposals done in $(( $(date +%s) - start )) s"
  fi
  if [ "$rpn_only" = True ]; then  # the RPN's face recall on the held-out WIDER train images
    "$PY" tools/proposal_recall.py "$step=$cfg:$out/model_final.pth" \
      --dataset widerface_train_heldout --min-face 24 2>/dev/null | sed "s/^/[train_rcnn] /" \
      || echo "[train_rcnn] $step: held-out recall not measured (tools/proposal_recall.py failed)"
  fi
done
