#!/usr/bin/env bash
# Start a one-node SLURM cluster (munge + slurmctld + slurmd) in DIR, without systemd.
# Recipe and traps: shared/notes/local-slurm.md. Needs root and Debian's slurmctld slurmd
# slurm-client munge. Stop it with stop.sh DIR (by pid files, never by process name).
set -euo pipefail
DIR=$(realpath "${1:?usage: start.sh DIR}")
mkdir -p "$DIR"/{munge,state,spool,log}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
PORT_BASE=${SLURM_TEST_PORT:-16817}

if [ ! -s /etc/munge/munge.key ]; then
  mungekey -c -f -k /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
chown munge:munge "$DIR/munge"
chmod 755 "$DIR/munge"
runuser -u munge -- /usr/sbin/munged --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
  --seed-file="$DIR/munge/munged.seed" --key-file=/etc/munge/munge.key
cp "$DIR/munge/munged.pid" "$DIR/munged.pid"

cat > "$DIR/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
CONF
# GPU requests schedule without a GPU: the gres maps to /dev/null
echo "NodeName=$HOST Name=gpu File=/dev/null" > "$DIR/gres.conf"

# jobsteps strip SLURM_CONF, so srun inside jobs reads /etc/slurm/slurm.conf
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
  echo "start.sh: /etc/slurm/slurm.conf exists and is not ours; refusing to replace it" >&2
  exit 3
fi
ln -sfn "$DIR/slurm.conf" /etc/slurm/slurm.conf
ln -sfn "$DIR/gres.conf" /etc/slurm/gres.conf
echo "$DIR" > "$DIR/owner"

export SLURM_CONF="$DIR/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|unknown|down'; then break; fi
  sleep 0.5
done
scontrol update nodename="$HOST" state=resume 2>/dev/null || true
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -q idle; then
    echo "slurm up: $(sinfo -h -o '%P %T %c %m' | tr '\n' ';')"
    exit 0
  fi
  sleep 0.5
done
echo "start.sh: node did not become idle" >&2
sinfo >&2 || true
tail -20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
exit 4
