#!/usr/bin/env bash
# One-shot GPU checks on one card, in at most 10 minutes, with nothing downloaded:
#   gpu_tests        the `gpu`-marked tests (among them nvJPEG against libjpeg-turbo, printing the
#                    largest difference, and INPUT.DECODE_DEVICE cuda against the CPU loader)
#   bench_resnet50   ResNet-50 training step, batch 256, torch.compile + bf16 + channels_last +
#                    fused SGD, ours vs torchvision's resnet50; images/s, TFLOP/s, fraction of peak
#   bench_pipeline   the same step fed by JPEG files (ImageNet folder layout, generated) read by
#                    loader workers and decoded on the GPU (TorchCodec's decode_jpeg device=cuda,
#                    batched), against the model-only step
#   bench_pretrain   the same step (compile + bf16 + channels_last) fed by our pretraining loader
#                    with INPUT.DECODE_DEVICE cuda (the paper's augmentation on the GPU), against
#                    the model-only step: end-to-end images/s, goal >= 90 % of model-only and
#                    >= 5,000 images/s on one H100
#   bench_detectors  R50-FPN training iteration and inference vs torchvision's Faster R-CNN,
#                    16 images 576x768, AMP (bf16)
#   bench_r101_c4    R101-C4 training at 16 images of shorter side 600, AMP (bf16), peak memory
#   digits_resnet20  a short pretraining run on CUDA with bf16 and channels_last
# Logs and JSON under ${OUT:-./output/gpu_check}. Keeps going past a failed step and reports
# every step's exit status at the end. docs/benchmarks.md says how to read the rows.
#
# The GPU machine has torch, torchvision and timm but not torchcodec / fvcore / iopath /
# pycocotools, which the data package and the config system import. Wheels for them travel in
# the tree, in .whl/ (git-ignored; never committed). Fetch them once on a machine with network
# access:
#   bash tools/gpu_check.sh --fetch-wheels
# (builds pure-Python wheels of fvcore, iopath and their dependencies, and downloads
# pycocotools / faster-coco-eval / torchcodec binary wheels for the Python version in
# GPU_PYTHON_VERSION, default 3.12; GPU_TORCHCODEC, default "torchcodec", must name the
# torchcodec release built for the GPU machine's torch, e.g. "torchcodec==0.17.*" for torch
# 2.14). The ResNet-50 row needs none of them, the pipeline row only torchcodec.
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p .whl
  python3 -m pip wheel -q -w .whl fvcore iopath yacs portalocker tabulate termcolor || exit 1
  python3 -m pip download -q -d .whl --only-binary=:all: --no-deps \
    --python-version "${GPU_PYTHON_VERSION:-3.12}" --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 pycocotools faster-coco-eval \
    "${GPU_TORCHCODEC:-torchcodec}" || exit 1
  ls .whl; exit 0
fi
out="${OUT:-./output/gpu_check}"; mkdir -p "$out"
# The checkout travels to the GPU machine without being pip-installed there: the tools import
# resnet_det from it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg RESNET_DET_DATASETS="$out/datasets"
status=()
step() {  # step NAME TIMEOUT_S CMD...
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T), at most ${t}s)"
  timeout "$t" "$@" > "$out/$name.log" 2>&1; local rc=$?
  tail -n 20 "$out/$name.log"; status+=("$name=$rc")
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --find-links .whl fvcore iopath pycocotools faster-coco-eval \
    torchcodec > "$out/wheels.log" 2>&1 || echo "wheels: some did not install (see $out/wheels.log)"
else
  echo "no .whl/ wheels: rows needing torchcodec or fvcore may fail; see the header of this script"
fi
python3 -c "import torchcodec; print('torchcodec', torchcodec.__version__)" \
  || echo "torchcodec does not import: the decoding rows and tests will fail"
bench() { python3 tools/benchmark.py --device cuda "$@"; }
step gpu_tests 60 python3 -m pytest -q -m gpu tests -p no:cacheprovider
step bench_resnet50 130 bench --rows gpu_resnet50 --amp bf16 --channels-last --compile \
  --batch 256 --size 224 --repetitions 20 --warmup 5 --output "$out/bench_resnet50.json"
step bench_pipeline 90 bench --rows gpu_pipeline --amp bf16 --channels-last --batch 256 \
  --size 224 --repetitions 3 --warmup 1 --gpu-workers 14 --gpu-images 1024 \
  --output "$out/bench_pipeline.json"
step bench_pretrain 150 bench --rows gpu_pretrain --amp bf16 --channels-last --compile \
  --batch 256 --size 224 --repetitions 3 --warmup 2 --gpu-workers 14 --gpu-images 2048 \
  --output "$out/bench_pretrain.json"
# 576x768: a multiple of 64, so both R50-FPNs pad the batch alike (docs/benchmarks.md).
step bench_detectors 75 bench --rows detector --amp bf16 --det-batch 16 --det-size 576 \
  --roi-batch 512 --repetitions 5 --warmup 2 --output "$out/bench_detectors.json"
step bench_r101_c4 60 bench --rows gpu_r101_c4 --amp bf16 --det-batch 16 --det-size 600 \
  --roi-batch 512 --repetitions 5 --warmup 2 --output "$out/bench_r101_c4.json"
step digits_resnet20 45 python3 tools/pretrain_net.py --config-file configs/digits/resnet20.yaml \
  MODEL.DEVICE cuda SOLVER.AMP.ENABLED True SOLVER.AMP.DTYPE bfloat16 SOLVER.CHANNELS_LAST True \
  SOLVER.MAX_ITER 200 OUTPUT_DIR "$out/digits_resnet20"
echo "STEP STATUS: ${status[*]}"
