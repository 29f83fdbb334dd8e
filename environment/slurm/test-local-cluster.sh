#!/usr/bin/env bash
# A real Slurm run on this machine: a one-node cluster (slurmctld and slurmd on localhost, Debian's slurm-wlm and munge),
# a 4-way job array of a tiny sampling job submitted with submit.sh plus its dependent merge, then a byte-for-byte
# comparison of the merged folder with the same job run unsharded. Stops every daemon it started on exit, always.
#
#   sudo environment/slurm/test-local-cluster.sh            (after `dotnet build RoentGen.Notebooks.sln -c Release`)
#
# Needs root (daemons, apt-get). Installs slurm-wlm and munge with apt-get where they are missing. Everything else lives
# in a temporary folder: its own munge key and socket, its own slurm.conf (SLURM_CONF), free ports, state and logs; the
# system's /etc/slurm and /etc/munge are not touched. Nothing from a system munged or slurm is used or stopped.
#
# Environment:
#   ROENTGEN            how to run the CLI (default: dotnet <repo>/lib/RoentGen.Cli/bin/Release/net10.0/RoentGen.Cli.dll)
#   SLURM_TEST_DEADLINE seconds for the whole test (default 420); past it the test fails and cleans up
#   SLURM_TEST_KEEP=1   keep the temporary folder (logs, outputs) for inspection
#
# Exit codes: 0 passed; 1 failed; 77 cannot run here (not root, no apt-get, packages cannot be installed) = skipped.
set -uo pipefail
start=$SECONDS
deadline=$(( ${SLURM_TEST_DEADLINE:-420} ))
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { echo "slurm-test [$((SECONDS - start))s]: $*"; }
skip() { echo "slurm-test: SKIP: $*"; exit 77; }
fail() { echo "slurm-test: FAIL: $*"; exit 1; }
left() { echo $(( deadline - (SECONDS - start) )); }
# Seconds a command may still take (at least 1: `timeout 0` would mean no limit at all).
budget() { local l; l=$(left); [ "$l" -gt 0 ] && echo "$l" || echo 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (it starts slurmctld, slurmd and munged, and may apt-get install slurm-wlm munge)"
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || skip "slurm-wlm and munge are not installed and there is no apt-get"
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -q >/dev/null 2>&1 || skip "apt-get update failed"
  timeout 300 apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || skip "apt-get install slurm-wlm munge failed"
fi
ROENTGEN="${ROENTGEN:-dotnet $repo/lib/RoentGen.Cli/bin/Release/net10.0/RoentGen.Cli.dll}"
export ROENTGEN
cli_dll="${ROENTGEN##* }"
[ "$ROENTGEN" != "$cli_dll" ] && [ ! -f "$cli_dll" ] && fail "$cli_dll is missing: build first (dotnet build RoentGen.Notebooks.sln -c Release)"

work="$(mktemp -d /tmp/roentgen-slurm-test.XXXXXX)"
chmod 700 "$work"
export SLURM_CONF="$work/etc/slurm.conf"
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  if [ -f "$work/slurmctld.pid" ] && command -v scancel >/dev/null 2>&1; then
    # Cancel this cluster's jobs (SLURM_CONF points at it) and give their steps a moment to end before the daemons go.
    timeout 10 scancel --quiet --user=root >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do timeout 5 squeue -h 2>/dev/null | grep -q . || break; sleep 0.5; done
  fi
  for name in slurmd slurmctld munged; do
    local pidfile="$work/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile" 2>/dev/null)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    log "stopped $name (pid $pid)"
  done
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ] || [ $code -ne 0 ]; then
    if [ $code -ne 0 ]; then
      for f in "$work"/train.log "$work"/whole.log "$work"/slurmctld.log "$work"/slurmd.log "$work"/out/sharded/slurm-logs/*.out; do
        [ -f "$f" ] && { echo "----- $f (last 25 lines)"; tail -n 25 "$f"; }
      done
    fi
    log "kept $work"
  else
    rm -rf "$work"
  fi
  exit $code
}
trap cleanup EXIT
trap 'log "interrupted"; exit 1' INT TERM

# --- munge: our own key and socket ---------------------------------------------------------------------------------
mkdir -p "$work/munge" "$work/etc" "$work/state" "$work/spool" "$work/out"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --socket="$socket" --key-file="$work/munge/munge.key" --pid-file="$work/munged.pid" \
  --log-file="$work/munged.log" --seed-file="$work/munge/munged.seed" || fail "munged did not start (see $work/munged.log)"
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null || fail "munge round trip failed on $socket"
log "munged up on $socket"

# --- slurm.conf: one node, this machine -----------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 512 ))
ctld_port="$(free_port)"; slurmd_port="$(free_port)"
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(free_port)"; done
cat > "$SLURM_CONF" <<CONF
# One-node test cluster written by environment/slurm/test-local-cluster.sh.
ClusterName=roentgen-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Containers: no cgroups. Processes are tracked through their parent ids; tasks are not bound to cores.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=30 State=UP
CONF
slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
log "slurmctld (port $ctld_port) and slurmd (port $slurmd_port) started: node $host, CPUs=$cpus, RealMemory=${mem_mb}M"
until sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^idle'; do
  [ "$(left)" -gt 0 ] || fail "the node did not become idle (sinfo: $(sinfo -h -N -o '%T %E' 2>&1))"
  sleep 1
done
log "node idle"

# --- the job: a tiny model, a prompt list, 4 shards + merge on Slurm, and the same job unsharded ---------------------
export OMP_NUM_THREADS=1
log "training a tiny model"
timeout "$(budget)" $ROENTGEN train ldm --preset tiny --out "$work/model" >"$work/train.log" 2>&1 || fail "tiny training failed (see $work/train.log)"
printf '%s\n' "normal chest radiograph" "cardiomegaly" "left pleural effusion" "right pneumothorax" "support devices" "no acute findings" > "$work/prompts.txt"
sample_args=(sample --checkpoint "$work/model" --prompts "$work/prompts.txt" --steps 3 --scheduler ddim --seed 7)

submit_out="$("$here/submit.sh" --shards 4 --out "$work/out/sharded" --time 00:05:00 --cpus 1 --mem 1G --merge-time 00:05:00 -- "${sample_args[@]}")" \
  || fail "submit.sh failed: $submit_out"
log "$submit_out"
array_id="$(echo "$submit_out" | sed -n 's/^array job \([0-9]*\).*/\1/p')"
merge_id="$(echo "$submit_out" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')"
[ -n "$array_id" ] && [ -n "$merge_id" ] || fail "could not read the job ids from submit.sh's output"

log "unsharded run of the same job while the array runs"
timeout "$(budget)" $ROENTGEN "${sample_args[@]}" --out "$work/out/whole" >"$work/whole.log" 2>&1 || fail "the unsharded run failed (see $work/whole.log)"

while squeue -h -j "$array_id,$merge_id" 2>/dev/null | grep -q .; do
  [ "$(left)" -gt 0 ] || fail "deadline: jobs still queued or running: $(squeue -h -j "$array_id,$merge_id" -o '%i %T %r' | tr '\n' ';')"
  sleep 2
done
state="$(scontrol show job "$merge_id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1)"
[ "$state" = "JobState=COMPLETED" ] || fail "merge job $merge_id ended with ${state:-an unknown state}"
log "array $array_id and merge $merge_id completed"

# --- compare: every output file, the table and the merged manifest, byte for byte ----------------------------------
sharded="$work/out/sharded"; whole="$work/out/whole"
for i in 0 1 2 3; do [ -f "$sharded/shards/samples-000$i-of-0004.done" ] || fail "shard $i/4 left no completion marker"; done
cmp "$sharded/samples.csv" "$whole/samples.csv" || fail "samples.csv differs"
cmp "$sharded/shards/merged.json" "$whole/shards/merged.json" || fail "shards/merged.json differs"
count=0
for f in "$whole"/images/*.png; do
  cmp "$f" "$sharded/images/$(basename "$f")" || fail "$(basename "$f") differs"
  count=$((count + 1))
done
[ "$count" -eq 6 ] || fail "expected 6 images, found $count"
[ "$(ls "$sharded/images" | wc -l)" -eq 6 ] || fail "the sharded folder holds other images"
log "PASS: 4 shards on Slurm + merge == unsharded run ($count images, samples.csv, merged.json byte-identical) in $((SECONDS - start)) s"
exit 0
