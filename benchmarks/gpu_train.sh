#!/usr/bin/env bash
# Train calcium candidates on a GPU machine in one call of the device tool: the hybrid training
# cohort is built there (from a carried real-lumen build: 27 MB, where the hybrid cohort is 80 MB),
# then the runs train at once on the one GPU, and their last checkpoints come back to be scored
# here (benchmarks/hybrid_pool.py score; docs/calcium_candidates.md).
#
#   here:   python -m octseg.datasets.danilov.build build ../shared/data/ivoct-danilov/pullback-001 \
#               .gpu_data/real_lumen                       # add /.gpu_data/ to .git/info/exclude
#           bash benchmarks/gpu_wheels.sh                  # if the machine lacks the packages
#   there:  bash benchmarks/gpu_train.sh .gpu_data/real_lumen $OUT s1="seed=1" s2="seed=2" ...
#           (carry .gpu_data and .whl; each NAME="OVERRIDES" is one train.py run of
#           experiment=hybrid on the GPU with those Hydra overrides)
#
# Back in OUT: NAME.ckpt (last.ckpt of each run as weights only: saved every epoch, so a run stopped
# at the deadline still returns its last epoch), NAME_metrics.json, train_log.txt (the build's and every
# run's log lines), build_md5.txt (the built cohort's files, the synthetic pullbacks included, to
# compare with a build here). At most 3 runs per call (8 files come back).
# Environment: PYTHON (python3), WORK (where the cohort and runs are written, default
# /tmp/octseg-gpu-train), WORKERS (loader workers per run, default 4), EPOCHS (default: the
# recipe's), DEADLINE (seconds for the whole script, default 560, inside the device tool's 600 s
# per command, counted from this script's start: what the command runs before it comes on top;
# the runs are stopped 45 s before it and each run's checkpoint is shipped as soon as it ends),
# TRAINER (default gpu; cpu to try the script), BUILD_ARGS (options of the hybrid build, default "--stent-share 1.0": octseg-calcium-v1's).
set -u
REAL=$1 OUT=$2
shift 2
DEADLINE=${DEADLINE:-560}
if (($# < 1 || $# > 3)); then
    echo "gpu_train.sh: give 1 to 3 runs as NAME=\"OVERRIDES\" (8 files come back)" >&2
    exit 2
fi
for spec in "$@"; do
    [[ $spec == ?*=* ]] || { echo "gpu_train.sh: '$spec' is not NAME=\"OVERRIDES\"" >&2; exit 2; }
done
PY=${PYTHON:-python3}
W=${WORK:-/tmp/octseg-gpu-train}
mkdir -p "$OUT" "$W"
LOG="$OUT/train_log.txt"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
source "$(dirname "$0")/gpu_env.sh"  # carried wheels and this checkout on PYTHONPATH

echo "== build $(date +%T)" | tee -a "$LOG"
"$PY" -m octseg.cli synth "$W/synth_small" --preset small --n 8 --seed 0 >>"$LOG" 2>&1 &&
    "$PY" -m octseg.datasets.hybrid.cohort build "$REAL" "$W/hybrid" --synthetic "$W/synth_small" \
        ${BUILD_ARGS:---stent-share 1.0} >>"$LOG" 2>&1 ||
    { echo "build failed" | tee -a "$LOG"; exit 1; }
(cd "$W/hybrid" && find -L . -name "*.npz" | sort | xargs md5sum) >"$OUT/build_md5.txt"
left=$((DEADLINE - SECONDS - 45))  # 45 s to ship the checkpoints (one Python start each) and return
# (timeout 0 would mean no limit at all)
((left > 0)) || { echo "no time left to train (${left}s after the build)" | tee -a "$LOG"; exit 1; }
echo "== train $(date +%T), ${left}s left: $*" | tee -a "$LOG"

collect() {  # collect NAME: each run's results as soon as it ends (a run stopped at the deadline too)
    local name=$1 run=$W/runs/$1
    # weights only (tools/ship_model.py drops the optimiser state: a 1.6 M-parameter run's
    # last.ckpt is about 20 MB, over the 16 MiB a returned file may have)
    if [[ -f $run/last.ckpt ]]; then
        "$PY" tools/ship_model.py "$run" --ckpt last.ckpt --out "$OUT/$name.ckpt" >"$W/$name.ship" 2>&1 ||
            echo "$name: shipping last.ckpt failed" >>"$W/$name.ship"
    else
        echo "$name: no checkpoint" >"$W/$name.ship"
    fi
    cp "$run/metrics.json" "$OUT/${name}_metrics.json" 2>/dev/null
}
set -f  # the overrides are split into words, never globbed ([16,32] stays as written)
for spec in "$@"; do
    name=${spec%%=*}
    rm -rf "${W:?}/runs/$name"  # a warm machine keeps /tmp: never ship an earlier call's checkpoint
    # shellcheck disable=SC2086  # the overrides are words
    { timeout -k 10 "$left" "$PY" train.py experiment=hybrid trainer="${TRAINER:-gpu}" \
        data.root="$W/hybrid/train" data.val_root="$W/hybrid/val" \
        data.num_workers="${WORKERS:-4}" data.pin_memory=true \
        ${EPOCHS:+trainer.max_epochs=$EPOCHS} hydra.run.dir="$W/runs/$name" ${spec#*=} \
        >"$W/$name.log" 2>&1; collect "$name"; } &
done
set +f
wait
for spec in "$@"; do
    name=${spec%%=*}
    { echo "== $name"; tr '\r' '\n' <"$W/$name.log" | grep -a -E "INFO|Error|error" | tail -n 40; } >>"$LOG"
    tee -a "$LOG" <"$W/$name.ship"
done
echo "== done $(date +%T)" | tee -a "$LOG"
