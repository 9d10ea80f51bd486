#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests (tests/test_slurm.py) and for trying cnnlab's
# SLURM launcher by hand:
#   tools/slurm-local.sh start    # install slurm-wlm and munge when missing, write the config, start the daemons
#   tools/slurm-local.sh status   # sinfo
#   tools/slurm-local.sh stop     # stop the daemons and remove the folder
# Everything lives in $CNNLAB_SLURM_DIR (default /tmp/cnnlab-slurm): slurm.conf, state, spool, logs, munge's
# socket. Clients find the cluster through SLURM_CONF=$CNNLAB_SLURM_DIR/slurm.conf (the tests set it themselves
# when that file exists). Needs root (the daemons), as on a CI machine; nothing outside the folder is changed
# except the installed packages. One node with this machine's CPUs and 90 % of its memory, no accounting
# (as on many small clusters), proctrack/linuxproc and task/none (no cgroups in a container).
set -euo pipefail
DIR=${CNNLAB_SLURM_DIR:-/tmp/cnnlab-slurm}
CONF=$DIR/slurm.conf

install() {
    command -v slurmctld > /dev/null && command -v munged > /dev/null && return 0
    echo "slurm-local: installing slurm-wlm and munge (apt) ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } \
        > "$DIR/apt.log" 2>&1 || { echo "slurm-local: apt-get failed, see $DIR/apt.log" >&2; return 1; }
}

start() {
    mkdir -p "$DIR"/{state,spool,log,run,munge}
    install
    if [ -f "$DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2> /dev/null; then
        echo "slurm-local: already running (SLURM_CONF=$CONF)"; return 0
    fi
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    [ -f "$DIR/munge/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2> /dev/null; }
    chown -R munge:munge "$DIR/munge" 2> /dev/null || true
    chmod 700 "$DIR/munge"; chmod 400 "$DIR/munge/munge.key"
    cat > "$CONF" << EOF
ClusterName=cnnlab-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=${CNNLAB_SLURM_PORT:-6817}
SlurmdPort=$(( ${CNNLAB_SLURM_PORT:-6817} + 1 ))
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"
    slurmctld -f "$CONF"
    slurmd -f "$CONF"
    for _ in $(seq 60); do
        if SLURM_CONF=$CONF sinfo -h -o %T 2> /dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm-local: running, node $host with $cpus CPUs and $memory MB (export SLURM_CONF=$CONF)"
            return 0
        fi
        sleep 1
    done
    echo "slurm-local: the node did not come up; logs in $DIR/log" >&2
    return 1
}

stop() {
    for daemon in slurmd slurmctld munged; do
        [ -f "$DIR/run/$daemon.pid" ] && kill "$(cat "$DIR/run/$daemon.pid")" 2> /dev/null || true
    done
    sleep 1
    rm -rf "$DIR"
    echo "slurm-local: stopped"
}

case "${1:-status}" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$CONF sinfo ;;
    *) echo "usage: tools/slurm-local.sh start|status|stop" >&2; exit 2 ;;
esac
