#!/usr/bin/env bash
# make slurm-check: the cluster path end to end on a real (single-node) SLURM, from
# experiments/slurm/local-cluster.sh.
#   1. figure1's quick grid through `figure1 --quick --submit slurm` (job arrays, one task per
#      cell: the cluster it starts has MaxArraySize 40, so the 48 cells go in two arrays; then the
#      merge job), and the merged file's metrics against a local `--jobs 2` run of the same grid,
#      bit for bit (inspect compare);
#   2. a second submission (four of those cells, one task at a time) with its last task cancelled
#      (scancel JOB_TASK): its merge keeps the other three, --list-cells names the hole, a rerun of
#      --submit submits that one cell, and every cell is computed exactly once (task logs).
# Stops the cluster it started however it ends. Exits 1 on any failure. Writes under
# results/slurm-check/ (scratch, recomputed each time).
# Usage: experiments/slurm/check.sh [BIN]   (BIN: release executables, default .build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/release}
work=results/slurm-check
cluster=experiments/slurm/local-cluster.sh
timeout=${SLURM_CHECK_TIMEOUT:-600}   # seconds a submission may take before the check fails
say() { echo "slurm-check: $*"; }
fail() { say "FAILED: $*"; exit 1; }

rm -rf "$work"
mkdir -p "$work"
# Stops the cluster at the end only if this check started it.
if $cluster status > /dev/null 2>&1; then say "using the local cluster already running"; else
    SSM_SLURM_MAX_ARRAY_SIZE=40 $cluster start
    trap '$cluster stop' EXIT
fi
eval "$($cluster env)"

# The job ids of the last submission recorded for a results file: "ARRAYS MERGE" (ARRAYS: ids joined by commas).
last_submission() { tail -n 1 "${1%.h5}.slurm/submissions" | sed -E 's/.* array=([0-9,]+) merge=([0-9]+) .*/\1 \2/'; }

# Waits until job $1 has ended (scontrol keeps ended jobs for MinJobAge = 600 s); prints its state.
wait_for() {
    local job=$1 start=$SECONDS state
    while :; do
        state=$(scontrol show job "$job" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2)
        case $state in
            COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) echo "$state"; return 0 ;;
        esac
        (( SECONDS - start > timeout )) && { echo "TIMEOUT_WAITING($state)"; return 0; }
        sleep 1
    done
}

say "1. figure1 --quick: a local --jobs 2 run, then the same grid through SLURM"
start=$SECONDS
"$bin/figure1" --quick --jobs 2 --out "$work/local/figure1.h5" > /dev/null 2> "$work/local.log" || { cat "$work/local.log"; fail "the local run"; }
say "   local --jobs 2: $(( SECONDS - start )) s"
start=$SECONDS
"$bin/figure1" --quick --out "$work/slurm/figure1.h5" --submit slurm --time 10
read -r array merge < <(last_submission "$work/slurm/figure1.h5")
state=$(wait_for "$merge")
[ "$state" = COMPLETED ] || fail "merge job $merge ended $state ($(cat "$work"/slurm/figure1.slurm/logs/merge_*.out 2>/dev/null))"
max_array=$(scontrol show config | awk '/^MaxArraySize/ {print $3}')
expected=$(( (48 + max_array - 1) / max_array ))
arrays=$(tr ',' '\n' <<<"$array" | wc -l)
[ "$arrays" = "$expected" ] || fail "48 cells went in $arrays array(s) ($array); MaxArraySize $max_array means $expected"
tasks=0
for id in ${array//,/ }; do tasks=$(( tasks + $(ls "$work"/slurm/figure1.slurm/logs/"${id}"_*.out | wc -l) )); done
say "   array job(s) $array ($tasks tasks; MaxArraySize $max_array) and merge job $merge $state in $(( SECONDS - start )) s: $(head -1 "$work"/slurm/figure1.slurm/logs/merge_"$merge".out)"
"$bin/inspect" compare "$work/slurm/figure1.h5" "$work/local/figure1.h5" | tail -n 3 | sed 's/^/slurm-check:    /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "the merged file differs from the local run"
say "   merged file = local --jobs 2 run, bit for bit"

say "2. a task cancelled, then resubmitted"
second=(--quick --methods sm,ssm --dims 4 --seeds 0,1 --out "$work/resubmit/figure1.h5")
"$bin/figure1" "${second[@]}" --submit slurm --max-parallel 1 --time 10
read -r array merge < <(last_submission "$work/resubmit/figure1.h5")
# One task at a time: the last one is still pending while the first runs.
scancel "${array}_3"
say "   scancel ${array}_3"
state=$(wait_for "$merge")
[ "$state" = COMPLETED ] || fail "merge job $merge ended $state"
# A pending task cancelled before it started leaves no job record and no log.
[ ! -e "$work/resubmit/figure1.slurm/logs/${array}_3.out" ] || fail "task ${array}_3 ran before scancel reached it"
cancelled="cancelled before it started"
hole=$("$bin/figure1" "${second[@]}" --list-cells 2>/dev/null)
[ "$hole" = ssm_d4_seed1 ] || fail "--list-cells after the cancel printed '$hole', expected ssm_d4_seed1"
say "   merge job $merge $state with task ${array}_3 $cancelled ($(grep -c '^  + ' "$work"/resubmit/figure1.slurm/logs/merge_"$merge".out) cells merged); --list-cells: $hole"
"$bin/figure1" "${second[@]}" --submit slurm --max-parallel 1 --time 10
read -r array2 merge2 < <(last_submission "$work/resubmit/figure1.h5")
[ "$(tail -n 1 "$work/resubmit/figure1.slurm/submissions" | grep -o 'cells=[0-9]*')" = cells=1 ] || fail "the resubmission did not submit exactly one cell"
state=$(wait_for "$merge2")
[ "$state" = COMPLETED ] || fail "merge job $merge2 ended $state"
logs=$(cat "$work"/resubmit/figure1.slurm/logs/*_*.out | grep -oE 'computing s?sm_d4_seed[0-9]+' | sort)
counts=$(uniq -c <<<"$logs" | awk '{print $1}' | sort -u | tr '\n' ' ')
[ "$(wc -l <<<"$logs")" = 4 ] && [ "$counts" = "1 " ] || fail "cells computed: $(uniq -c <<<"$logs" | tr '\n' ';')"
[ -z "$("$bin/figure1" "${second[@]}" --list-cells 2>/dev/null)" ] || fail "cells still missing after the resubmission"
"$bin/inspect" compare "$work/resubmit/figure1.h5" "$work/local/figure1.h5" --subset | tail -n 1 | sed 's/^/slurm-check:    /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "the resubmitted grid differs from the local run"
say "   resubmitted array job $array2 (1 task), merge job $merge2 $state: 4 cells, each computed once, equal to the local run"
say "passed"
