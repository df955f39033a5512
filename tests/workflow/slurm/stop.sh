#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by start.sh DIR: kill its daemons by their pid files.
set -uo pipefail
DIR=$(realpath "${1:?usage: stop.sh DIR}")
for f in slurmd.pid slurmctld.pid munged.pid; do
  if [ -s "$DIR/$f" ]; then
    pid=$(cat "$DIR/$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
done
for f in slurm.conf gres.conf; do
  if [ "$(readlink /etc/slurm/$f 2>/dev/null)" = "$DIR/$f" ]; then rm -f "/etc/slurm/$f"; fi
done
exit 0
