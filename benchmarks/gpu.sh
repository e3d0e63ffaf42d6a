#!/usr/bin/env bash
# Every GPU check of the project in one go (a few minutes on one H100/H200):
#   the CUDA tests (pytest -m gpu: CPU/GPU parity of the geometry, the post-processing and the
#   polar resampling; AMP training with a resumed epoch), then the benchmarks on CUDA: geometry
#   (1024x1024 Cartesian and 504x968 polar) and its profile, post-processing (both lumen contour rules),
#   inference (model only vs end to end, shipped model) and training throughput.
#
#   bash benchmarks/gpu.sh [OUT]        # JSON results and log.txt in OUT (default gpu_results/)
#
# PYTHON: the interpreter (default python3). A failing step is logged and the next one runs.
set -u
OUT=${1:-gpu_results}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
CKPT=octseg/model/weights/octseg-default-v1.ckpt
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

step() {  # step SECONDS NAME CMD...: run with a time limit, log, keep going
    local limit=$1 name=$2
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG" | tail -n 40
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$LOG"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
"$PY" -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__,
  torch.cuda.get_device_name(0), 'cpus', __import__('os').cpu_count())" | tee -a "$LOG"

step 150 tests "$PY" -m pytest -q -p no:cacheprovider -m gpu \
    tests/model/test_device_parity.py tests/core/test_polar.py tests/train/test_train_loop.py
step 120 geometry "$PY" benchmarks/geometry.py --device cuda --threads 1 --frames 4096 \
    --distinct 16 --chunk 256 --ref-frames 2 --repeat 5 --pullback 1000 \
    --json "$OUT/geometry_cuda.json"
step 60 geometry_profile "$PY" benchmarks/geometry_profile.py --device cuda --frames 512 \
    --chunk 256 --json "$OUT/geometry_profile_cuda.json"
step 120 postprocess "$PY" benchmarks/postprocess.py --device cuda --frames 64 --repeat 3 \
    --json "$OUT/postprocess_cuda.json"
for bs in 64 256; do
    step 150 "inference_bs$bs" "$PY" benchmarks/inference.py --checkpoint "$CKPT" \
        --device cuda --frames 1000 --pullbacks 2 --batch-size "$bs" --channels-last \
        --writers 4 --json "$OUT/inference_cuda.json" --label "bs$bs"
done
for spec in "unet 128 160 0.03 32" "unet 256 320 0.015 32" "dynunet 256 320 0.015 32"; do
    read -r model a s sp bs <<<"$spec"
    step 60 "train_${model}_$a" "$PY" benchmarks/train_throughput.py --model "$model" \
        --grid "$a" "$s" --spacing "$sp" --batch-size "$bs" --workers 6 --steps 40
done
echo "done $(date +%T)" | tee -a "$LOG"
