#!/usr/bin/env bash
# Single-node SLURM "cluster" on localhost for CI (Debian bookworm / Slurm 22.05), used
# by tests/test_slurm.py. Daemons are started by hand (no systemd needed), with state,
# logs and PID files under $SLURM_BASE; `stop` ends only the daemons this script started.
#
# Nothing is written under /etc (beyond what installing the packages does): the config
# files live in $SLURM_BASE/etc and every SLURM command finds them through
# SLURM_CONF=$SLURM_BASE/etc/slurm.conf, which whoever talks to this cluster (sbatch,
# squeue, snakemake) must have in its environment; our munged, when one is started, uses
# a key in $SLURM_BASE/munge; the node is addressed as 127.0.0.1, so its hostname need
# not resolve (no /etc/hosts entry). slurmd runs "configless" (it fetches the config from
# slurmctld and caches it under its spool folder, linked from /run/slurm/conf): the
# commands that run inside jobs find the config there, also those whose environment
# was stripped of SLURM_CONF (snakemake's slurm-jobstep executor drops every SLURM_*
# variable but the job's identity before its nested srun). `stop` removes that link.
# Why it matters: a slurm.conf left in /etc/slurm makes every SLURM command on the
# machine wait for a controller that is gone, snakemake's start-up among them (its SLURM
# executor plugin runs `scontrol show config`: 9 s more per snakemake call).
#
# Usage (as root):
#   local_slurm.sh install   # install the packages if missing (apt-get); nothing else
#   local_slurm.sh start     # install (if needed), configure, start daemons
#   local_slurm.sh stop      # stop ONLY the daemons this script started (PID files)
#   local_slurm.sh status    # show PIDs, sinfo, squeue
#   local_slurm.sh conf      # print the SLURM_CONF path for this $SLURM_BASE
#
# Env:
#   SLURM_BASE=/tmp/local-slurm  where state, logs, PID files and the MariaDB datadir live
#   WITH_DBD=1                  1: MariaDB + slurmdbd (sacct works; snakemake slurm plugin
#                               defaults work). 0: no accounting (sacct fails; snakemake needs
#                               `slurm-status-command: squeue`).
#   SLURM_ACCOUNT=ci            account created in slurmdbd (WITH_DBD=1 only)
#   SKIP_APT=0                  1: do not run apt-get (packages already installed)
#   FAKE_GPUS=0                 N>0: the node advertises N GPUs as a generic resource
#                               (gres gpu, no device files) so that jobs asking for
#                               --gpus are scheduled: tests the GPU requests of a
#                               profile on a machine without GPUs.
set -euo pipefail

BASE=${SLURM_BASE:-/tmp/local-slurm}
WITH_DBD=${WITH_DBD:-1}
ACCOUNT=${SLURM_ACCOUNT:-ci}
CLUSTER=localcluster
FAKE_GPUS=${FAKE_GPUS:-0}
DB_PORT=3307          # not 3306, to avoid clashing with a system MariaDB/MySQL
DB_PASS=slurmpw
RUN=$BASE/run; LOG=$BASE/log; STATE=$BASE/state; MUNGE_DIR=$BASE/munge; DB_DIR=$BASE/mysql
CONF_DIR=$BASE/etc   # slurm.conf, gres.conf, slurmdbd.conf: SLURM reads them beside $SLURM_CONF
export SLURM_CONF=$CONF_DIR/slurm.conf

log() { echo "[setup_local_slurm $(date +%T)] $*"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() { # wait_for <seconds> <cmd...>
  local t=$1; shift
  for _ in $(seq $((t * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

stop_pidfile() { # stop_pidfile <name> <pidfile>
  local name=$1 f=$2 p
  if ! alive "$f"; then log "$name: not running (no live PID in $f)"; rm -f "$f"; return 0; fi
  p=$(cat "$f"); log "$name: stopping PID $p"; kill "$p" || true
  for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$p" 2>/dev/null; then log "$name: PID $p still alive, SIGKILL"; kill -9 "$p" || true; fi
  rm -f "$f"
}

do_stop() {
  stop_pidfile slurmd    "$RUN/slurmd.pid"
  # slurmd's link to its config cache (configless), when it points into $BASE: left
  # behind, it would lead every SLURM command on the machine to our stopped controller.
  local cache; cache=$(readlink /run/slurm/conf 2>/dev/null || true)
  if [ -n "$cache" ] && [ "${cache#"$BASE"/}" != "$cache" ]; then
    log "removing /run/slurm/conf -> $cache"; rm -f /run/slurm/conf
  fi
  stop_pidfile slurmctld "$RUN/slurmctld.pid"
  stop_pidfile slurmdbd  "$RUN/slurmdbd.pid"
  stop_pidfile mariadbd  "$DB_DIR/mysqld.pid"
  stop_pidfile munged    "$MUNGE_DIR/munged.pid"   # only exists if WE started munged
}

do_status() {
  for f in "$RUN/slurmd.pid" "$RUN/slurmctld.pid" "$RUN/slurmdbd.pid" "$DB_DIR/mysqld.pid" "$MUNGE_DIR/munged.pid"; do
    if alive "$f"; then echo "running: $f -> $(cat "$f")"; else echo "stopped: $f"; fi
  done
  sinfo 2>&1 || true; squeue -t all 2>&1 || true
}

do_install() {
  [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
  mkdir -p "$BASE"
  local pkgs="munge slurmctld slurmd slurm-client"
  [ "$WITH_DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
  if [ "${SKIP_APT:-0}" != 1 ]; then
    local missing=""
    for p in $pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
    if [ -n "$missing" ]; then
      log "apt-get install$missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends $missing >"$BASE/apt.log" 2>&1 || { tail -20 "$BASE/apt.log"; exit 1; }
    fi
  fi
}

do_start() {
  local T0; T0=$(date +%s)
  [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

  # ---- 1. packages -------------------------------------------------------
  do_install
  # On systemd hosts (e.g. GitHub Actions) the packages may auto-start munge/slurm*/mariadb
  # services with the packaged config; a running system munged is reused below, system
  # slurmctld/slurmd would clash on ports 6817/6818 -> `systemctl stop slurmctld slurmd` there.

  # ---- 2. the node's name; its address is given (127.0.0.1), not looked up -----
  local H; H=$(hostname -s)

  mkdir -p "$BASE" "$RUN" "$LOG" "$STATE/ctld" "$STATE/d" "$MUNGE_DIR" "$CONF_DIR"
  chown slurm:slurm "$RUN" "$LOG" "$STATE" "$STATE/ctld"   # slurmctld runs as SlurmUser=slurm
  chown munge:munge "$MUNGE_DIR"; chmod 700 "$MUNGE_DIR"

  # ---- 3. munge ----------------------------------------------------------
  install -d -o munge -g munge -m 0755 /run/munge /var/lib/munge /var/log/munge
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answering on /run/munge/munge.socket.2 (reusing it)"
  else
    # Our own key, not /etc/munge/munge.key (left alone, whether or not it exists).
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
      log "creating munge key in $MUNGE_DIR"
      mungekey -c -k "$MUNGE_DIR/munge.key" 2>/dev/null \
        || dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1 count=1024 status=none
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"; chmod 400 "$MUNGE_DIR/munge.key"
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --key-file="$MUNGE_DIR/munge.key" \
      --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log"
    wait_for 10 sh -c 'munge -n | unmunge' || { echo "munge not working" >&2; exit 1; }
  fi

  # ---- 4. slurm.conf (also read by sacctmgr/slurmdbd) -----------------------------------------------------
  local mem node acct
  mem=$(awk '/MemTotal/{printf "%d", $2/1024*0.8}' /proc/meminfo)
  # slurmd -C prints the real topology: "NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
  # (SLURM_CONF unset for it: it needs no config, and ours is not written yet.)
  node=$(env -u SLURM_CONF slurmd -C | head -1 | sed -E "s/RealMemory=[0-9]+/RealMemory=$mem/")
  node="$node NodeAddr=127.0.0.1 NodeHostname=$H"
  if [ "$WITH_DBD" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  local gres=""
  if [ "$FAKE_GPUS" -gt 0 ]; then
    node="$node Gres=gpu:$FAKE_GPUS"
    gres="GresTypes=gpu"
  fi
  rm -f "$CONF_DIR/gres.conf"
  if [ "$FAKE_GPUS" -gt 0 ]; then
    # slurmd counts a gpu only with a device File=, one per gpu: copies of /dev/null
    # (char 1,3) stand in. No cgroups here, so nothing is enforced: only scheduled.
    local files=""
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
      [ -e "$BASE/fakegpu$i" ] || mknod -m 666 "$BASE/fakegpu$i" c 1 3
      files="$files${files:+,}$BASE/fakegpu$i"
    done
    printf '# written by local_slurm.sh (FAKE_GPUS)\nNodeName=%s Name=gpu File=%s\n' "$H" "$files" >"$CONF_DIR/gres.conf"
  fi
  cat >"$SLURM_CONF" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$H(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmctldParameters=enable_configless
$gres
$acct
JobCompType=jobcomp/none
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  # ---- 5. MariaDB + slurmdbd (optional) ---------------------------------
  if [ "$WITH_DBD" = 1 ]; then
    install -d -o mysql -g mysql "$DB_DIR"
    cat >"$BASE/my.cnf" <<EOF
[mysqld]
user=mysql
datadir=$DB_DIR/data
socket=$DB_DIR/mysqld.sock
pid-file=$DB_DIR/mysqld.pid
log-error=$DB_DIR/mariadb.err
bind-address=127.0.0.1
port=$DB_PORT
innodb_buffer_pool_size=128M
innodb_lock_wait_timeout=900
[client]
socket=$DB_DIR/mysqld.sock
EOF
    if [ ! -d "$DB_DIR/data/mysql" ]; then
      log "initialising MariaDB datadir"
      runuser -u mysql -- mariadb-install-db --datadir="$DB_DIR/data" --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1
    fi
    if ! alive "$DB_DIR/mysqld.pid"; then
      log "starting mariadbd on 127.0.0.1:$DB_PORT"
      setsid mariadbd --defaults-file="$BASE/my.cnf" >"$DB_DIR/mariadbd.out" 2>&1 </dev/null &
      wait_for 60 mariadb --defaults-file="$BASE/my.cnf" -e 'select 1' || { tail "$DB_DIR/mariadb.err"; exit 1; }
    fi
    mariadb --defaults-file="$BASE/my.cnf" -e "
      CREATE DATABASE IF NOT EXISTS slurm_acct_db;
      CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
      CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
      FLUSH PRIVILEGES;"
    cat >"$BASE/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    # slurmdbd refuses a slurmdbd.conf not owned by SlurmUser / readable by others
    install -o slurm -g slurm -m 600 "$BASE/slurmdbd.conf" "$CONF_DIR/slurmdbd.conf"
    if ! alive "$RUN/slurmdbd.pid"; then log "starting slurmdbd"; slurmdbd; fi
  fi

  if [ "$WITH_DBD" = 1 ]; then
    wait_for 60 sacctmgr -n list cluster || { tail "$LOG/slurmdbd.log"; exit 1; }
    sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true   # "Nothing new added" -> rc 1
  fi

  # ---- 6. slurmctld + slurmd ---------------------------------------------
  if ! alive "$RUN/slurmctld.pid"; then log "starting slurmctld"; slurmctld; fi
  wait_for 30 scontrol ping || { tail "$LOG/slurmctld.log"; exit 1; }
  if ! alive "$RUN/slurmd.pid"; then
    log "starting slurmd (configless, from slurmctld on 127.0.0.1)"
    env -u SLURM_CONF slurmd --conf-server 127.0.0.1
  fi
  if ! wait_for 30 sh -c "sinfo -h -n $H -o %t | grep -Eq '^(idle|mix|alloc)'"; then
    scontrol update nodename="$H" state=resume || true
    wait_for 15 sh -c "sinfo -h -n $H -o %t | grep -Eq '^(idle|mix|alloc)'" || { sinfo -R; tail "$LOG/slurmd.log"; exit 1; }
  fi

  if [ "$WITH_DBD" = 1 ]; then
    sacctmgr -i add account "$ACCOUNT" Description="$ACCOUNT" Organization="$ACCOUNT" >/dev/null 2>&1 || true
    sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
  fi

  # ---- 7. smoke test -----------------------------------------------------
  srun -N1 -n1 -t 1 hostname >/dev/null
  log "ready after $(( $(date +%s) - T0 ))s: $(sinfo -h -o '%P %a %D %t %N')  (WITH_DBD=$WITH_DBD; SLURM_CONF=$SLURM_CONF)"
}

case "${1:-start}" in
  install) do_install ;;
  start) do_start ;;
  conf) echo "$SLURM_CONF" ;;
  stop) do_stop ;;
  status) do_status ;;
  restart) do_stop; do_start ;;
  *) echo "usage: $0 install|start|stop|status|restart|conf" >&2; exit 2 ;;
esac
