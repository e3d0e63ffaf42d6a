#!/usr/bin/env bash
# A single-host SLURM cluster for the tests (Debian's slurm-wlm 22.05 + munge; run as root):
# munged, slurmctld and two slurmd on this machine, every file under one state directory.
#
#   eval "$(tests/cluster/slurm_up.sh [STATE_DIR])"   # prints `export SLURM_CONF=...`
#   sbatch ... / sinfo / scontrol show job ...
#   tests/cluster/slurm_down.sh STATE_DIR
#
# The two nodes are two names of this host that resolve to it (`hostname -s` and `localhost`),
# each a `slurmd -N NAME` with its own port, spool, pid and log file (%n in slurm.conf), so
# submitit's MASTER_ADDR (the first node name) resolves as it would on a real cluster. No
# cgroups (containers have no systemd): proctrack/linuxproc, task/none. Accounting: there is no
# slurmdbd in Debian's slurm-wlm packages, and sacct needs it (accounting_storage/filetxt was
# removed from SLURM), so finished jobs are recorded by jobcomp/filetxt in STATE/jobcomp.log.
# Ports are free ones picked at start; nothing is written outside STATE_DIR.
set -euo pipefail

STATE=${1:-$(mktemp -d "${TMPDIR:-/tmp}/octseg-slurm.XXXXXX")}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
for b in munged mungekey slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null || { echo "slurm_up: $b not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "slurm_up: must run as root (slurmd starts jobs as their user)" >&2; exit 3; }

N1=$(hostname -s)
N2=localhost
[ "$N1" != "$N2" ] || { echo "slurm_up: hostname is localhost; need two names" >&2; exit 3; }
getent hosts "$N1" >/dev/null || { echo "slurm_up: $N1 does not resolve" >&2; exit 3; }

free_ports() {  # N free TCP ports on this host
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r CTLD_PORT PORT1 PORT2 < <(free_ports 3)
# job ids (and so submitit's MASTER_PORT, derived from the job id) differ between clusters
FIRST_JOB=$(( (RANDOM % 9000 + 1000) * 100 ))

mkdir -p "$STATE"/{munge,ctld,spool,log,run}
chmod 700 "$STATE/munge"
# munge: our own key and socket (the system's munged, if any, is left alone)
[ -f "$STATE/munge/munge.key" ] || mungekey --create --keyfile="$STATE/munge/munge.key" >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"
SOCK="$STATE/munge/munge.socket"
munged --force --socket="$SOCK" --key-file="$STATE/munge/munge.key" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munge.seed"

CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
cat >"$STATE/slurm.conf" <<CONF
# written by tests/cluster/slurm_up.sh
ClusterName=octsegtest
SlurmctldHost=$N1(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
SlurmctldPort=$CTLD_PORT
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
PlugStackConfig=$STATE/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
ReturnToService=2
MinJobAge=3600
FirstJobId=$FIRST_JOB
KillWait=1
MailProg=/bin/true
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
MessageTimeout=20
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$N1 NodeAddr=127.0.0.1 Port=$PORT1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
NodeName=$N2 NodeAddr=127.0.0.1 Port=$PORT2 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$N1,$N2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
: >"$STATE/plugstack.conf"
export SLURM_CONF="$STATE/slurm.conf"
echo "export SLURM_CONF=$SLURM_CONF" >"$STATE/env"

slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF" -N "$N1"
slurmd -f "$SLURM_CONF" -N "$N2"

# both nodes idle, or give up with the logs
for _ in $(seq 1 120); do
    states=$(sinfo -h -N -o "%N %t" 2>/dev/null | sort -u || true)
    if [ "$(echo "$states" | grep -c ' idle$')" = 2 ]; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.5
done
echo "slurm_up: nodes not idle after 60 s: $states" >&2
tail -n 20 "$STATE"/log/*.log >&2 || true
exit 1
