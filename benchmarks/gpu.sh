#!/usr/bin/env bash
# Every GPU check of the project in one go (a few minutes on one H100/H200):
#   the CUDA tests (pytest -m gpu: CPU/GPU parity of the geometry, the post-processing and the
#   polar resampling; AMP training with a resumed epoch), then the benchmarks on CUDA: geometry
#   (1024x1024 Cartesian and 504x968 polar) and its profile, post-processing (both lumen contour rules),
#   inference (model only vs end to end, shipped model) and training throughput.
#
#   bash benchmarks/gpu.sh [OUT]        # JSON results and log.txt in OUT (default gpu_results/)
#
# Run from the repository root; the checkout need not be installed (the root goes on PYTHONPATH).
# On a machine that has torch but not this project's other packages, fetch their wheels first
# where pip works (bash benchmarks/gpu_wheels.sh, into .whl/) and carry .whl along: the script
# installs them into /tmp/site and puts that on PYTHONPATH.
#
# PYTHON: the interpreter (default python3). A failing step is logged and the next one runs.
# DEADLINE: seconds the whole script may take (default 540, inside the device tool's 600 s per
# command); each step's limit is cut to what is left, and a step with under 20 s left is skipped
# (a device lease is short: the steps run in order of importance).
set -u
DEADLINE=${DEADLINE:-540}
OUT=${1:-gpu_results}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
CKPT=octseg/model/weights/octseg-default-v1.ckpt
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/gpu_env.sh"  # carried wheels and this checkout on PYTHONPATH

step() {  # step SECONDS NAME CMD...: run with a time limit, log, keep going
    local limit=$1 name=$2 left=$((DEADLINE - SECONDS))
    shift 2
    if ((left < 20)); then
        echo "=== $name: skipped, ${left}s left of DEADLINE=${DEADLINE}" | tee -a "$LOG"
        return
    fi
    ((limit > left)) && limit=$left
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG" | tail -n 40
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$LOG"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
"$PY" -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__,
  torch.cuda.get_device_name(0), 'cpus', __import__('os').cpu_count())" | tee -a "$LOG"

step 110 geometry "$PY" benchmarks/geometry.py --device cuda --threads 1 --frames 4096 \
    --distinct 16 --chunk 256 --ref-frames 2 --repeat 5 --pullback 1000 \
    --json "$OUT/geometry_cuda.json"
infer() {  # infer BATCH LIMIT
    step "$2" "inference_bs$1" "$PY" benchmarks/inference.py --checkpoint "$CKPT" \
        --device cuda --frames 1000 --pullbacks 2 --batch-size "$1" --channels-last \
        --writers 4 --json "$OUT/inference_cuda.json" --label "bs$1"
}
infer 256 120
step 100 tests "$PY" -m pytest -q -p no:cacheprovider -m gpu \
    tests/model/test_device_parity.py tests/core/test_polar.py tests/train/test_train_loop.py
infer 64 90
for spec in "unet 256 320 0.015 32" "dynunet 256 320 0.015 32" "unet 128 160 0.03 32"; do
    read -r model a s sp bs <<<"$spec"
    step 50 "train_${model}_$a" "$PY" benchmarks/train_throughput.py --model "$model" \
        --grid "$a" "$s" --spacing "$sp" --batch-size "$bs" --workers 6 --steps 40
done
step 45 geometry_profile "$PY" benchmarks/geometry_profile.py --device cuda --frames 512 \
    --chunk 256 --json "$OUT/geometry_profile_cuda.json"
step 60 postprocess "$PY" benchmarks/postprocess.py --device cuda --frames 16 --repeat 1 \
    --json "$OUT/postprocess_cuda.json"
echo "done $(date +%T)" | tee -a "$LOG"
