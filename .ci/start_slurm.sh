#!/usr/bin/env bash
# Starts a one-node SLURM cluster on this machine for the cluster tests (tests/engine/
# test_slurm.py, tests/tools/test_launch_slurm.py): Debian's slurm-wlm and munge, as root, with
# munged, slurmctld and slurmd as plain background daemons (no systemd). The node is this
# machine with its real CPUs and memory; one partition "debug". Idempotent: a cluster that
# already answers is left as it is. Exit status 0 when `sinfo` shows the node idle.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "start_slurm.sh: needs root (installs packages, starts daemons)" >&2
  exit 1
fi
if command -v sinfo >/dev/null 2>&1 && timeout 10 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'; then
  echo "start_slurm.sh: a SLURM cluster already answers: $(sinfo -h -o '%N %T %c CPUs')"
  exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q slurm-wlm munge >/dev/null
fi

host="$(hostname -s)"
# The node's real resources, as slurmd sees them ("NodeName=vm CPUs=2 ... RealMemory=24151").
read -r cpus mem < <(slurmd -C | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "=");
  if (kv[1] == "CPUs") c = kv[2]; if (kv[1] == "RealMemory") m = kv[2]}} END {print c, m}')

# munge: a key readable by munged only, its folders owned by its user.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! pgrep -u munge munged >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
fi

install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=resnetdet
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job ends, is cancelled or requeued: the time a
# run has to finish its iteration and write its checkpoint (docs/cluster.md).
KillWait=120
MinJobAge=600
NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
echo "start_slurm.sh: /etc/slurm/slurm.conf for node ${host} (${cpus} CPUs, ${mem} MB)"

pkill_ours() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; }
pkill_ours /run/slurmctld.pid
pkill_ours /run/slurmd.pid
sleep 1
slurmctld -i   # -i: ignore state files of an earlier cluster
slurmd

for _ in $(seq 90); do
  state="$(timeout 10 sinfo -h -n "${host}" -o %T 2>/dev/null || true)"
  case "${state}" in
    idle|mixed|allocated) echo "start_slurm.sh: node ${host} ${state}"; exit 0 ;;
    down*|drain*) scontrol update NodeName="${host}" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "start_slurm.sh: the node did not become idle; last state '${state}'" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
