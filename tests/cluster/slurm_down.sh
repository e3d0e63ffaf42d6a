#!/usr/bin/env bash
# Stops what tests/cluster/slurm_up.sh STATE_DIR started (by the pid files in STATE_DIR), cancels
# leftover jobs, and removes STATE_DIR unless KEEP_STATE=1.
set -uo pipefail
STATE=${1:?usage: slurm_down.sh STATE_DIR}
[ -d "$STATE" ] || exit 0
export SLURM_CONF="$STATE/slurm.conf"
if [ -f "$SLURM_CONF" ] && command -v scancel >/dev/null; then
    timeout 10 scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
    # wait (up to 30 s) until the jobs' processes have ended, so no job outlives its slurmd
    for _ in $(seq 1 60); do
        [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
        sleep 0.5
    done
fi
stop() {  # stop the process whose pid is in $1: TERM, then KILL after 10 s
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
}
for f in "$STATE"/run/slurmd-*.pid; do stop "$f"; done
stop "$STATE/run/slurmctld.pid"
stop "$STATE/munge/munged.pid"
[ "${KEEP_STATE:-0}" = 1 ] || rm -rf "$STATE"
exit 0
