#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying and testing `--submit slurm`
# (make slurm-check). Debian's slurm-wlm and munge, as root; everything it writes lives under
# $SSM_SLURM_DIR (default /tmp/ssm-slurm): slurm.conf, spool and state folders, logs, pid files.
# SSM_SLURM_MAX_ARRAY_SIZE sets MaxArraySize (default 1001, SLURM's own default): the most tasks
# one job array may have.
#
#   experiments/slurm/local-cluster.sh start    install the packages if missing, write the config,
#                                               start munged, slurmctld and slurmd; wait for the node
#   experiments/slurm/local-cluster.sh status   the daemons this script started, and sinfo
#   experiments/slurm/local-cluster.sh stop     stop exactly those daemons (by pid), nothing else
#   experiments/slurm/local-cluster.sh env      the line that points SLURM's commands at the config:
#                                               eval "$(experiments/slurm/local-cluster.sh env)"
#
# What works on a 2-core Debian 12 VM (no systemd, no cgroup delegation): proctrack/linuxproc,
# task/none, select/cons_tres with CR_Core, SlurmUser=root, no accounting database (sacct is not
# available; watch jobs with squeue and `scontrol show job`).
set -euo pipefail

dir=${SSM_SLURM_DIR:-/tmp/ssm-slurm}
conf=$dir/slurm.conf
host=$(hostname -s)

die() { echo "local-cluster: $*" >&2; exit 1; }

# pid of a daemon this script started, if it still runs (and is still that program).
running() {
    local name=$1 file=$dir/$1.pid pid
    [ -f "$file" ] || return 1
    pid=$(head -n 1 "$file")
    [ -n "$pid" ] && [ -r /proc/$pid/comm ] && [ "$(cat /proc/$pid/comm)" = "$name" ] && echo "$pid"
}

install_packages() {
    local missing=""
    for p in slurm-wlm munge; do
        dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || die "needs root to install$missing (and to run slurmd)"
    echo "local-cluster: installing$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

write_config() {
    # The daemons and SLURM's commands read these whatever umask the caller has (077 included).
    umask 022
    mkdir -p "$dir/spool/ctld" "$dir/spool/d" "$dir/log"
    cat > "$conf" <<CONF
# Written by experiments/slurm/local-cluster.sh: one node, this machine, all cores.
ClusterName=ssm-local
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
MaxArraySize=${SSM_SLURM_MAX_ARRAY_SIZE:-1001}
MaxJobCount=100000
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    install_packages
    [ "$(id -u)" = 0 ] || die "slurmd must run as root here (SlurmUser=root)"
    if running slurmctld >/dev/null && running slurmd >/dev/null; then
        echo "local-cluster: already running (config $conf)"; return 0
    fi
    write_config
    export SLURM_CONF=$conf
    # munged refuses to start unless its socket folder belongs to it.
    if ! pgrep -x munged >/dev/null; then
        install -d -o munge -g munge -m 0755 /run/munge
        rm -f /run/munge/munged.pid
        runuser -u munge -- /usr/sbin/munged
        for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
        cp /run/munge/munged.pid "$dir/munged.pid" || die "munged did not start (see /var/log/munge/munged.log)"
    fi
    running slurmctld >/dev/null || /usr/sbin/slurmctld
    running slurmd >/dev/null || /usr/sbin/slurmd
    # The node registers within seconds; give it 60.
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
        case $state in idle|mixed|allocated) echo "local-cluster: node $host $state (config $conf)"; return 0 ;; esac
        sleep 1
    done
    die "the node did not come up within 60 s (state '${state:-none}'); see $dir/log/"
}

stop() {
    local stopped=""
    for name in slurmd slurmctld munged; do
        if pid=$(running $name); then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            stopped="$stopped $name($pid)"
        fi
        rm -f "$dir/$name.pid"
    done
    echo "local-cluster: stopped${stopped:- nothing (none of its daemons was running)}"
}

status() {
    local up=0
    for name in munged slurmctld slurmd; do
        if pid=$(running $name); then echo "$name: running, pid $pid"; else echo "$name: not running"; up=1; fi
    done
    if [ $up = 0 ]; then SLURM_CONF=$conf sinfo; fi
    return $up
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 64 ;;
esac
