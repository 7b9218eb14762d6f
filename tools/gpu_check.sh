#!/usr/bin/env bash
# One-shot GPU checks: the `gpu`-marked tests, training throughput against torchvision's same
# networks (ratios from one run), and short detector / classifier training runs on CUDA with
# AMP. Writes logs under ${OUT:-./output/gpu_check}. Keeps going past a failed step and
# reports every step's exit status at the end.
set -u
out="${OUT:-./output/gpu_check}"; mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg RESNET_DET_DATASETS="$out/datasets"
status=()
step() {  # step NAME TIMEOUT_S CMD...
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T))"
  timeout "$t" "$@" > "$out/$name.log" 2>&1; local rc=$?
  tail -n 15 "$out/$name.log"; status+=("$name=$rc")
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
step gpu_tests 70 python3 -m pytest -q -m gpu tests -p no:cacheprovider
step bench_resnet 80 python3 tools/benchmark.py --models resnet50 resnet101 --batch 128 \
  --amp bf16 --channels-last --steps 15 --output "$out/bench_resnet.json"
step det_r101_c4 110 python3 tools/train_net.py --config-file configs/faster_rcnn_R101.yaml \
  MODEL.DEVICE cuda MODEL.WEIGHTS "" MODEL.ROI_HEADS.NUM_CLASSES 3 \
  MODEL.RESNETS.NORM BN MODEL.PIXEL_STD "[57.4,57.1,58.4]" \
  DATASETS.TRAIN "('shapes_train',)" DATASETS.TEST "('shapes_val',)" \
  SOLVER.IMS_PER_BATCH 8 SOLVER.MAX_ITER 40 SOLVER.STEPS "(30,)" SOLVER.WARMUP_ITERS 10 \
  SOLVER.AMP.ENABLED True SOLVER.CHECKPOINT_PERIOD 1000 DATALOADER.NUM_WORKERS 8 \
  LOG_PERIOD 10 OUTPUT_DIR "$out/det_r101_c4"
step digits_resnet20 60 python3 tools/pretrain_net.py --config-file configs/digits/resnet20.yaml \
  MODEL.DEVICE cuda SOLVER.AMP.ENABLED True SOLVER.AMP.DTYPE bfloat16 SOLVER.CHANNELS_LAST True \
  OUTPUT_DIR "$out/digits_resnet20"
echo "STEP STATUS: ${status[*]}"
