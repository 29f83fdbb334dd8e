#!/usr/bin/env bash
# Submits a `roentgen` job as a Slurm job array of N shards plus the dependent merge; prints both job ids.
#
#   environment/slurm/submit.sh --shards 16 --out /scratch/phantoms --time 00:30:00 --cpus 2 --mem 4G -- \
#       data phantoms --n 100000 --size 128
#   environment/slurm/submit.sh --shards 8 --out /scratch/samples -- \
#       sample --checkpoint /scratch/model --prompts prompts.txt --steps 20
#
# Options (each also from the environment variable in brackets):
#   --shards N        shard count: the array is 0-(N-1)                       [ROENTGEN_SHARDS]   (required)
#   --out DIR         the shared output folder, passed to the verb as --out   [ROENTGEN_OUT]      (required)
#   --time T          time limit per shard, sbatch format                     [ROENTGEN_TIME]     (default 01:00:00)
#   --cpus C          CPUs per shard (also its libtorch threads)              [ROENTGEN_CPUS]     (default 2)
#   --mem M           memory per shard, sbatch format                         [ROENTGEN_MEM]      (default 4G)
#   --partition P     partition                                               [ROENTGEN_PARTITION] (default: the cluster's)
#   --max-running K   at most K shards at once (--array=0-(N-1)%K)            [ROENTGEN_MAX_RUNNING]
#   --merge-time T    time limit of the merge                                 [ROENTGEN_MERGE_TIME] (default 00:30:00)
#   --logs DIR        where the .out files go                                 [ROENTGEN_LOGS]     (default DIR/slurm-logs)
# Everything after `--` is the roentgen verb and its arguments (without --out and --shard).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

shards="${ROENTGEN_SHARDS:-}"; out="${ROENTGEN_OUT:-}"; time_limit="${ROENTGEN_TIME:-01:00:00}"; cpus="${ROENTGEN_CPUS:-2}"
mem="${ROENTGEN_MEM:-4G}"; partition="${ROENTGEN_PARTITION:-}"; max_running="${ROENTGEN_MAX_RUNNING:-}"
merge_time="${ROENTGEN_MERGE_TIME:-00:30:00}"; logs="${ROENTGEN_LOGS:-}"
usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --shards) shards="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --time) time_limit="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --partition) partition="$2"; shift 2 ;;
    --max-running) max_running="$2"; shift 2 ;;
    --merge-time) merge_time="$2"; shift 2 ;;
    --logs) logs="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "submit.sh: unknown option $1 (the roentgen verb goes after --)" >&2; exit 2 ;;
  esac
done
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --shards N (N >= 1) is required" >&2; exit 2; }
[ -n "$out" ] || { echo "submit.sh: --out DIR is required" >&2; exit 2; }
[ "$#" -gt 0 ] || { echo "submit.sh: give the roentgen verb after --, e.g. -- data phantoms --n 1000" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
logs="${logs:-$out/slurm-logs}"
mkdir -p "$logs"

# The batch scripts run from Slurm's spool copy, so they cannot find the repository themselves: say how to run the CLI here.
if [ -z "${ROENTGEN:-}" ]; then
  if command -v roentgen >/dev/null 2>&1; then ROENTGEN=roentgen
  else ROENTGEN="dotnet $(cd "$here/../.." && pwd)/lib/RoentGen.Cli/bin/Release/net10.0/RoentGen.Cli.dll"; fi
fi
export ROENTGEN

array="0-$((shards - 1))${max_running:+%$max_running}"
common=(--parsable --export=ALL,ROENTGEN_SHARDS="$shards")
[ -z "$partition" ] || common+=(--partition="$partition")

array_id=$(sbatch "${common[@]}" --array="$array" --time="$time_limit" --cpus-per-task="$cpus" --mem="$mem" \
  --output="$logs/shard-%A_%a.out" "$here/shard-array.sbatch" "$@" --out "$out")
array_id="${array_id%%;*}"
merge_id=$(sbatch "${common[@]}" --dependency=afterok:"$array_id" --kill-on-invalid-dep=yes --time="$merge_time" --cpus-per-task=1 \
  --mem=2G --output="$logs/merge-%j.out" "$here/merge.sbatch" "$out")
merge_id="${merge_id%%;*}"
echo "array job $array_id ($shards shards: $array), merge job $merge_id (after all shards succeed); logs in $logs"
echo "watch: squeue -j $array_id,$merge_id    result: $out (shards/merged.json once merged)"
