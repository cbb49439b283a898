#!/usr/bin/env bash
# A single-node Slurm on this machine (controller and compute node in one), for
# tests/slurm.rs and CI: installs Slurm and munge with apt-get when missing (root only),
# writes /etc/slurm/slurm.conf, starts munged, slurmctld and slurmd, and waits until the
# node is idle. Does nothing when `sinfo` already answers. Debian 12 (Slurm 22.05).
set -euo pipefail

if command -v sinfo >/dev/null 2>&1 && timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "slurm_single_node: Slurm already answers (sinfo)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "slurm_single_node: Slurm is not running and starting it needs root" >&2
    exit 2
fi
if ! command -v slurmctld >/dev/null 2>&1; then
    echo "slurm_single_node: installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

host="$(hostname -s)"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=regulab
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# munge: its key and socket folder belong to the munge user.
mkdir -p /run/munge /etc/munge
chown munge:munge /run/munge /etc/munge
chmod 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if [ -x /usr/sbin/mungekey ]; then
        /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
fi

pgrep -x slurmctld >/dev/null || slurmctld -i
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 1 60); do
    if sinfo -h -o "%T" 2>/dev/null | grep -qx idle; then
        echo "slurm_single_node: node ${host} idle"
        exit 0
    fi
    sleep 1
done
echo "slurm_single_node: the node did not become idle in 60 s: $(sinfo -h 2>&1 | head -1)" >&2
exit 1
