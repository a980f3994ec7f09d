#!/usr/bin/env bash
# `just slurm-smoke`: a one-node Slurm cluster on localhost (slurmctld, slurmd and munge from
# Debian's packages, installed if missing), the smoke profile of two experiments submitted as the
# 3-task array jobs that `replicate plan EXPERIMENT --slurm 3` prints, their merge jobs awaited,
# and the merged tables compared with a run of the same plans on this machine without Slurm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/replicate"
data="${REPLICATE_DATA_DIR:-$root/data/mnist}"
experiments=(center-loss deepid2)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
started=$(date +%s)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    as_root apt-get install -y -q slurm-wlm munge || { as_root apt-get update -q && as_root apt-get install -y -q slurm-wlm munge; }
fi

work=$(mktemp -d /tmp/replicate-slurm.XXXXXX)
chmod 755 "$work"
export SLURM_CONF="$work/slurm.conf"
cleanup() {
    scancel --user="$(id -un)" 2>/dev/null || true
    for pid in "$work"/slurmd.pid "$work"/slurmctld.pid; do
        [ -s "$pid" ] && as_root kill "$(cat "$pid")" 2>/dev/null || true
    done
    [ -n "${munge_pid:-}" ] && as_root kill "$munge_pid" 2>/dev/null || true
}
trap cleanup EXIT

# munge authenticates slurmd to slurmctld; a key and a running munged are all it needs here.
if ! munge -n >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || as_root mungekey --create --keyfile=/etc/munge/munge.key
    as_root chown munge:munge /etc/munge/munge.key
    as_root mkdir -p /run/munge && as_root chown munge:munge /run/munge
    as_root runuser -u munge -- /usr/sbin/munged --force
    munge_pid=$(pgrep -n munged)
fi

node=$(hostname -s)
cat > "$SLURM_CONF" <<CONF
ClusterName=replicate-smoke
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$(id -un)
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=smoke Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$work/state" "$work/spool"
as_root slurmctld -f "$SLURM_CONF"
as_root slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o "%P %D %T %c" | grep -q idle || { echo "slurm-smoke: the node did not come up; $work/slurmd.log:"; tail "$work/slurmd.log"; exit 1; }

results="$work/results"
for experiment in "${experiments[@]}"; do
    "$bin" --data-dir "$data" --results-dir "$results" plan "$experiment" --profile smoke --slurm 3 > "$work/$experiment.sbatch.sh"
    bash "$work/$experiment.sbatch.sh"
done
for _ in $(seq 600); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 1
done
[ -z "$(squeue -h -o %i)" ] || { echo "slurm-smoke: jobs still queued after 10 minutes"; squeue; exit 1; }
if grep -l -i "error" "$results-shards"/logs/*.out; then
    echo "slurm-smoke: a job failed (its log above)"; exit 1
fi

single="$work/single"
for experiment in "${experiments[@]}"; do
    "$bin" --data-dir "$data" --results-dir "$single" run "$experiment" --profile smoke > /dev/null 2>&1
done
python3 - "$results" "$single" "${experiments[@]}" <<'PY'
import sys
import pandas as pd
merged, single, experiments = sys.argv[1], sys.argv[2], sys.argv[3:]
# Wall-clock columns, and the thread count: a shard of one run trains it on every thread, a plan
# of several on half of them each (--jobs); the numbers do not depend on it (tests/reliability.rs).
wall_clock = ["train_seconds", "images_per_second", "finished_at_unix", "threads"]
for experiment in experiments:
    for table in ["runs", "curves", "features"]:
        a = pd.read_parquet(f"{merged}/{experiment}/{table}.parquet")
        b = pd.read_parquet(f"{single}/{experiment}/{table}.parquet")
        keep = [c for c in b.columns if c not in wall_clock]
        a = a[keep].sort_values(list(keep[:1])).reset_index(drop=True)
        b = b[keep].sort_values(list(keep[:1])).reset_index(drop=True)
        if table != "runs":
            a, b = (t.sort_values(list(t.columns)).reset_index(drop=True) for t in (a, b))
        assert len(a) == len(b), f"{experiment}/{table}: {len(a)} merged rows, {len(b)} on one machine"
        pd.testing.assert_frame_equal(a, b, check_like=True)
        print(f"{experiment}/{table}.parquet: {len(a)} rows, the same as on one machine")
PY
echo "slurm-smoke passed in $(( $(date +%s) - started )) s"
