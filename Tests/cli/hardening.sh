#!/usr/bin/env bash
# Command-line hardening tests (issue: no crash, no silent overwrite, no work thrown away).
#
# Runs the executables as a user would, on bad input, interruptions and a full disk, and checks
# for each case: the exit status (64 usage error: nothing computed; 1 failure during a run; 0),
# a phrase of the message, that a precious results file is byte-for-byte unchanged (sha256 before
# and after every refused command), and that nothing is left behind (temporaries, locks, files).
#
# Usage: Tests/cli/hardening.sh [BIN]   (BIN: folder with the built executables, default .build/debug)
# Ends with the line "cli: N passed, M failed"; exits 1 if any case failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:-$root/.build/debug}" && pwd)
work=$(mktemp -d /tmp/ssm-cli.XXXXXX)
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$mounted" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
passed=0; failed=0; skipped=0

ok()   { passed=$((passed + 1)); echo "  ok    $1"; }
bad()  { failed=$((failed + 1)); echo "  FAIL  $1"; [ -n "${2:-}" ] && sed 's/^/        | /' <<<"$2" | head -20; }
skip() { skipped=$((skipped + 1)); echo "  skip  $1"; }
sum()  { sha256sum "$1" | cut -d' ' -f1; }

# expect NAME STATUS PHRASE -- COMMAND...: runs COMMAND (stdout+stderr captured in $out), checks
# its exit status and that PHRASE (grep -F) is in what it printed; leaves the status in $status.
expect() {
  local name=$1 want=$2 phrase=$3; shift 4
  out=$("$@" 2>&1); status=$?
  if [ "$status" != "$want" ]; then bad "$name: exit $status, expected $want" "$out"; return 1; fi
  if [ -n "$phrase" ] && ! grep -qF -- "$phrase" <<<"$out"; then bad "$name: no '$phrase' in the output" "$out"; return 1; fi
  ok "$name (exit $status)"
}
# unchanged NAME FILE SUM: FILE still has checksum SUM.
unchanged() { if [ "$(sum "$2")" = "$3" ]; then ok "$1: $(basename "$2") unchanged"; else bad "$1: $(basename "$2") changed"; fi; }
# nothing_left NAME GLOB...: no file matches.
nothing_left() {
  local name=$1; shift
  local left; left=$(ls -d "$@" 2>/dev/null)
  if [ -z "$left" ]; then ok "$name: nothing left behind"; else bad "$name: left behind" "$left"; fi
}

# A tiny grid (seconds in a debug build) with a quick: block, and a second one with two seeds.
cat > tiny.yml <<'EOF'
methods: [ssm]
dims: [2]
seeds: [0]
model:
  inducing_points: 5
  hidden_width: 3
protocol:
  train: 50
  validation: 10
  test: 10
  batch_size: 10
  epochs: 1
  validation_alpha_points: 20
  alpha_batch: 10
  finalize_steps: 2
  finalize_batch: 5
  importance_samples: 100
  importance_chunk: 50
timing:
  warmup: 0
  iterations: 1
quick:
  dims: [3]
EOF
sed 's/^seeds: \[0\]/seeds: [0, 1]/' tiny.yml > two.yml
train=(--method ssm --dimension 2 --epochs 0 --finalize-steps 1 --importance-samples 100 --inducing-points 5)

echo "cli: building the precious files"
"$bin/figure1" --config tiny.yml --out precious.h5 > /dev/null 2>&1 || { echo "cli: could not build precious.h5"; exit 1; }
"$bin/train-dkef" "${train[@]}" --out run.h5 > /dev/null 2>&1 || { echo "cli: could not build run.h5"; exit 1; }
grid_sum=$(sum precious.h5); run_sum=$(sum run.h5)

echo "cli: 1. train-dkef never replaces a file silently"
expect "train-dkef onto an existing grid file" 64 "rerun with --fresh" -- "$bin/train-dkef" "${train[@]}" --out precious.h5
unchanged "train-dkef onto an existing grid file" precious.h5 "$grid_sum"
expect "train-dkef onto an existing run" 64 "holds train-dkef results" -- "$bin/train-dkef" "${train[@]}" --out run.h5
unchanged "train-dkef onto an existing run" run.h5 "$run_sum"
cp run.h5 replace.h5
expect "train-dkef --fresh" 0 "kept the old replace.h5 as replace.h5." -- "$bin/train-dkef" "${train[@]}" --seed 1 --out replace.h5 --fresh
backup=$(ls replace.h5.*.bak 2>/dev/null | head -1)
if [ -n "$backup" ] && [ "$(sum "$backup")" = "$run_sum" ] && [ "$(sum replace.h5)" != "$run_sum" ]; then ok "train-dkef --fresh: old file kept as $backup, new file written"
else bad "train-dkef --fresh: backup missing or file not replaced" "$(ls)"; fi

echo "cli: 2. everything is checked before the first second of compute"
echo "plain text" > plainfile
expect "train-dkef --out under a file" 64 "plainfile is a file, not a folder" -- "$bin/train-dkef" "${train[@]}" --out plainfile/t.h5
if grep -q "finalize\|train " <<<"$out"; then bad "train-dkef --out under a file: computed before failing" "$out"; else ok "train-dkef --out under a file: nothing computed"; fi
expect "train-dkef --out in /proc" 64 "cannot create files in /proc" -- "$bin/train-dkef" "${train[@]}" --out /proc/t.h5
expect "train-dkef --out a folder" 64 "it is a folder" -- "$bin/train-dkef" "${train[@]}" --out "$work"
expect "train-dkef --out a new folder" 0 "" -- "$bin/train-dkef" "${train[@]}" --out new/dir/t.h5
[ -f new/dir/t.h5 ] && ok "train-dkef creates the folder of --out" || bad "train-dkef did not write new/dir/t.h5"
expect "train-dkef --cp-noise not a layout" 64 "--cp-noise: unknown CP noise layout 'pairs'; choose one of per_point, per_pair" -- "$bin/train-dkef" "${train[@]}" --cp-noise pairs --out x.h5
expect "cp-noise --dims 10,,50" 64 "--dims: empty element in '10,,50'" -- "$bin/cp-noise" --results "$root/results/figure1.h5" --dims 10,,50 --out cpn
expect "cp-noise --draws 1" 64 "--draws must be ≥ 2" -- "$bin/cp-noise" --results "$root/results/figure1.h5" --draws 1 --out cpn
expect "cp-noise, a missing results file" 64 "--results: no such file no-such.h5" -- "$bin/cp-noise" --results no-such.h5 --out cpn
expect "cp-noise, a cell the file lacks" 64 "has no cell cp_d7_seed0" -- "$bin/cp-noise" --results "$root/results/figure1.h5" --dims 7 --seeds 0 --out cpn
expect "train-dkef --target not a target" 64 "--target: unknown target 'banana'; choose one of standard_normal, correlated_normal, gaussian_mixture, student_t" -- "$bin/train-dkef" "${train[@]}" --target banana --out x.h5
expect "figure3 --targets not a target" 64 "--targets: must be a non-empty list of distinct targets" -- "$bin/figure3" --config tiny.yml --targets standard_normal,banana --out t3.h5
expect "figure3 --targets student_t," 64 "--targets: empty element" -- "$bin/figure3" --config tiny.yml --targets student_t, --out t3.h5
printf 'targets: [student_t]\ntarget:\n  condition_number: 10\n' | cat tiny.yml - > lone.yml
expect "a target parameter the grid does not read" 64 "key 'target.condition_number': is read only by correlated_normal" -- "$bin/figure3" --config lone.yml --out t3.h5
[ ! -e t3.h5 ] && ok "figure3's refused runs wrote nothing" || bad "figure3 wrote t3.h5 on a refused run"
expect "figure4 without a sampling: block" 64 "key 'sampling': figure4 samples the trained models and needs a sampling: block" -- "$bin/figure4" --config tiny.yml --out t4.h5
[ ! -e t4.h5 ] && ok "figure4's refused run wrote nothing" || bad "figure4 wrote t4.h5 on a refused run"
expect "sample, a missing checkpoint file" 64 "--checkpoint: no such file no-such.h5" -- "$bin/sample" --checkpoint no-such.h5 --out s.h5
expect "sample, a grid file without --cell" 64 "for a grid's results file name the cell with --cell" -- "$bin/sample" --checkpoint precious.h5 --out s.h5
expect "sample, a cell the file lacks" 64 "--cell: precious.h5 has no cell 'ssm_d3_seed0'" -- "$bin/sample" --checkpoint precious.h5 --cell ssm_d3_seed0 --out s.h5
expect "sample --step-size 0" 64 "--step-size must be finite and > 0" -- "$bin/sample" --checkpoint run.h5 --step-size 0 --out s.h5
expect "sample --sampler hmc" 64 "--sampler: unknown sampler 'hmc'; choose mala or langevin" -- "$bin/sample" --checkpoint run.h5 --sampler hmc --out s.h5
expect "sample onto an existing file" 64 "rerun with --fresh" -- "$bin/sample" --checkpoint run.h5 --steps 4 --burn-in 2 --thinning 1 --chains 3 --out run.h5
unchanged "sample onto an existing file" run.h5 "$run_sum"
expect "sample from a grid cell" 0 "mala: 6 samples of D = 2" -- "$bin/sample" --checkpoint precious.h5 --cell ssm_d2_seed0 --steps 4 --burn-in 2 --thinning 1 --chains 3 --out s.h5
unchanged "sample reads the grid file" precious.h5 "$grid_sum"
expect "train-dkef --inducing-points above the training points" 64 "--inducing-points must be in 1...4860" -- "$bin/train-dkef" "${train[@]}" --inducing-points 5000 --out x.h5

echo "cli: 3. temporaries: removed on Ctrl-C, on a full disk, and when a dead process left them"
# interrupt SIGNAL STATUS: starts a run that holds its finished temporary file, sends SIGNAL once
# the temporary is there, and expects exit STATUS and nothing left behind. The run starts with
# SIGNAL at its default disposition whatever this script inherited (a script's background job,
# nohup and some CI runners start it with SIGINT ignored), as a terminal's Ctrl-C would find it;
# job control (set -m) gives it a process group of its own.
interrupt() {
  local sig=$1 want=$2 status
  set -m
  SSM_TEST_PAUSE_BEFORE_RENAME=30 env --default-signal="$sig" "$bin/train-dkef" "${train[@]}" --out "$sig.h5" > "$sig.log" 2>&1 &
  local pid=$!
  set +m
  for _ in $(seq 1 300); do ls "$sig.h5.tmp-"* > /dev/null 2>&1 && break; sleep 0.1; done
  if ! ls "$sig.h5.tmp-"* > /dev/null 2>&1; then kill "$pid" 2>/dev/null; bad "$sig during a write: the temporary never appeared" "$(cat "$sig.log")"; return; fi
  kill -s "$sig" "$pid"; wait "$pid"; status=$?
  [ "$status" = "$want" ] && ok "$sig during a write ends the run (exit $status)" || bad "$sig during a write: exit $status, expected $want" "$(cat "$sig.log")"
  nothing_left "$sig during a write" "$sig.h5" "$sig.h5.tmp-*"
}
interrupt INT 130
interrupt TERM 143
# A run started with SIGINT ignored (nohup, a script's background job) keeps ignoring it; the
# disposition is set here, not inherited from however this script was started.
SSM_TEST_PAUSE_BEFORE_RENAME=2 env --ignore-signal=INT "$bin/train-dkef" "${train[@]}" --out ignored.h5 > ignored.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do ls ignored.h5.tmp-* > /dev/null 2>&1 && break; sleep 0.1; done
kill -INT "$pid"; wait "$pid"; status=$?
[ "$status" = 0 ] && [ -f ignored.h5 ] && ok "an ignored SIGINT stays ignored (the run finished)" || bad "an ignored SIGINT: exit $status" "$(cat ignored.log)"
# Ctrl-C of a grid run with --jobs 2 while both processes compute a cell: SIGINT to the process
# group, as a terminal sends it. The cells already recorded stay; no temporary, no claim file and
# no claim folder (.<file>.cells) is left, and no process of the run goes on. The tiny cells take
# 0.1 s, so a worker could finish the grid between two looks for its claims: each holds its
# finished file 30 s before the rename (the test hook), with its claim taken, until the signal.
sed 's/^seeds: \[0\]/seeds: [0, 1, 2, 3, 4, 5]/' tiny.yml > six.yml
set -m
SSM_TEST_PAUSE_BEFORE_RENAME=30 env --default-signal=INT "$bin/figure1" --config six.yml --jobs 2 --out ctrlc.h5 > ctrlc.log 2>&1 &
pid=$!
set +m
for _ in $(seq 1 600); do [ "$(ls .ctrlc.h5.cells/*.lock 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.05; done
claims=$(ls .ctrlc.h5.cells 2>/dev/null | tr '\n' ' ')
if [ -z "$claims" ]; then bad "Ctrl-C of a --jobs 2 grid: no cell was ever claimed" "$(cat ctrlc.log)"; fi
kill -INT -- -"$pid"; wait "$pid"; status=$?
for _ in $(seq 1 100); do pgrep -g "$pid" > /dev/null || break; sleep 0.1; done
[ "$status" = 130 ] && ok "Ctrl-C of a --jobs 2 grid while claiming $claims(exit $status)" || bad "Ctrl-C of a --jobs 2 grid: exit $status, expected 130" "$(cat ctrlc.log)"
pgrep -g "$pid" > /dev/null && bad "Ctrl-C of a --jobs 2 grid: processes still running" "$(pgrep -a -g "$pid")" || ok "Ctrl-C of a --jobs 2 grid: no process of the run left"
nothing_left "Ctrl-C of a --jobs 2 grid" "ctrlc.h5.tmp-*" ".ctrlc.h5.cells"
cp precious.h5 stale.h5; stale_sum=$(sum stale.h5)
sh -c 'exit 0' & dead=$!; wait "$dead"
echo "partial" > "stale.h5.tmp-$dead"
expect "a stale temporary is removed and named" 0 "removed ./stale.h5.tmp-$dead: a temporary copy left by a process that is no longer running" -- "$bin/figure1" --config tiny.yml --out stale.h5
nothing_left "a stale temporary" "stale.h5.tmp-*"
unchanged "resuming a finished grid" stale.h5 "$stale_sum"
mkdir -p full
if mount -t tmpfs -o size=$(( $(stat -c %s precious.h5) + 16384 )) tmpfs full 2>/dev/null; then
  mounted="$work/full"
  cp precious.h5 full/precious.h5; full_sum=$(sum full/precious.h5)
  expect "a full disk fails the cell write" 1 "the file itself is unchanged" -- "$bin/figure1" --config two.yml --out full/precious.h5
  nothing_left "a full disk" "full/precious.h5.tmp-*" "full/.precious.h5.cells"
  unchanged "a full disk" full/precious.h5 "$full_sum"
  umount full; mounted=""
else
  skip "a full disk (cannot mount a tmpfs here)"
fi

echo "cli: 4. inspect check on a file of the wrong kind"
mkdir -p kinds
"$bin/figure2" --config tiny.yml --out kinds/table1.h5 > /dev/null 2>&1
kind_sum=$(sum kinds/table1.h5)
expect "inspect check, figure2's file named table1.h5" 64 "kinds/table1.h5 holds figure2 results, but threshold 'dsm_worst_over_best_sigma_min' needs table1 results" -- \
  "$bin/inspect" check --thresholds "$root/experiments/thresholds.yml" --results kinds
unchanged "inspect check, wrong kind" kinds/table1.h5 "$kind_sum"
expect "inspect show, a text file" 64 "is not a readable HDF5 file" -- "$bin/inspect" show plainfile
expect "inspect show, a missing file" 64 "does not exist" -- "$bin/inspect" show no-such.h5

echo "cli: 5-6. no traps: --epochs 0, a dimension no machine here can hold"
expect "train-dkef --epochs 0" 0 "no training iterations" -- "$bin/train-dkef" "${train[@]}" --out epochs0.h5
expect "train-dkef --dimension 100000" 64 "needs at least 46.0 GiB of memory" -- "$bin/train-dkef" --method ssm --dimension 100000 --out big.h5
expect "figure1 --dims 100000" 64 "a cell at D = 100000 needs at least" -- "$bin/figure1" --dims 100000 --out big.h5 --config "$root/experiments/figure1.yml"
nothing_left "refused dimensions" big.h5

echo "cli: 7-9. configs and flags are read strictly"
: > empty.yml
expect "an empty config" 64 "config empty.yml: is empty" -- "$bin/figure1" --quick --config empty.yml --out q.h5
grep -v '^quick:\|^  dims: \[3\]' tiny.yml > noquick.yml
expect "--quick without a quick: block" 64 "this file has none" -- "$bin/figure1" --quick --config noquick.yml --out q.h5
sed 's/^  dims: \[3\]/  dimz: [3]/' tiny.yml > typo.yml
expect "a typo in quick:, without --quick" 64 "key 'quick.dimz': unknown key" -- "$bin/figure1" --config typo.yml --out q.h5
expect "--dims 4,,8" 64 "--dims: empty element in '4,,8'" -- "$bin/figure1" --config tiny.yml --dims 4,,8 --out q.h5
nothing_left "refused configs and flags" q.h5 ".q.h5.cells"

echo "cli: 10. --jobs is capped, and checked before anything is created"
expect "--jobs 100000" 64 "--jobs 100000 is more than" -- "$bin/figure1" --config tiny.yml --jobs 100000 --out jobs.h5
nothing_left "--jobs 100000" jobs.h5 ".jobs.h5.cells"
expect "--jobs 4 with one cell to compute" 0 "--jobs 4 but only 1 cell(s) left to compute; starting 1 process(es)" -- "$bin/figure1" --config tiny.yml --jobs 4 --out jobs.h5

echo "cli: 11. messages name the file and say what to do"
expect "--out under /etc/hostname" 64 "/etc/hostname is a file, not a folder" -- "$bin/figure1" --config tiny.yml --out /etc/hostname/x.h5
if grep -q "NSCocoaErrorDomain" <<<"$out"; then bad "--out under /etc/hostname: raw Foundation error" "$out"; else ok "--out under /etc/hostname: no raw Foundation error"; fi
head -c 2000 precious.h5 > truncated.h5; trunc_sum=$(sum truncated.h5)
expect "a truncated HDF5 file as --out" 64 "rerun with --fresh" -- "$bin/figure1" --config tiny.yml --out truncated.h5
unchanged "a truncated HDF5 file as --out" truncated.h5 "$trunc_sum"
expect "--out in /proc" 64 "cannot create files in /proc (No such file or directory)" -- "$bin/figure1" --config tiny.yml --out /proc/x.h5
[ "$(wc -l <<<"$out")" -le 2 ] && ok "--out in /proc: a short message" || bad "--out in /proc: a long message" "$out"
printf 'ssm_vr_over_sm_fisher_max: [2.0\n' > broken.yml
expect "an invalid thresholds file" 64 "config broken.yml: not valid YAML" -- "$bin/inspect" check --thresholds broken.yml --results kinds
sed 's/^  epochs: 1/  epochs: 2/' tiny.yml > other.yml
expect "another config's results file" 64 "holds results of another configuration" -- "$bin/figure1" --config other.yml --out precious.h5
unchanged "refused outputs" precious.h5 "$grid_sum"

echo "cli: 12. usage errors name the flag and exit 64; failures during a run exit 1"
expect "--dims 0" 64 "--dims: must be a non-empty list of integers ≥ 1, got [0]" -- "$bin/figure1" --config tiny.yml --dims 0 --out q.h5
if grep -q "config tiny.yml" <<<"$out"; then bad "--dims 0 is blamed on the config file" "$out"; else ok "--dims 0 is not blamed on the config file"; fi
expect "--methods with a typo" 64 "--methods: unknown method 'ssmvr'" -- "$bin/figure1" --config tiny.yml --methods ssmvr --out q.h5
expect "an argument parser error" 64 "" -- "$bin/figure1" --jobs many
expect "an unknown train-dkef method" 64 "--method" -- "$bin/train-dkef" --method sliced --out q.h5
unchanged "usage errors" precious.h5 "$grid_sum"

echo "cli: 13-14. provenance matches the cells; single runs are shown"
expect "figure1 --jobs 2" 0 "" -- "$bin/figure1" --config two.yml --jobs 2 --out jobs2.h5
threads=$(h5dump -a /blas_threads jobs2.h5 | grep -o '(0): [0-9]*' | cut -d' ' -f2)
cell_threads=$(h5dump -a /cells/ssm_d2_seed1/blas_threads jobs2.h5 | grep -o '(0): [0-9]*' | cut -d' ' -f2)
[ "$threads" = 1 ] && [ "$cell_threads" = 1 ] && ok "blas_threads: file $threads, cells $cell_threads" || bad "blas_threads: file '$threads', cell '$cell_threads'"
expect "inspect show, a train-dkef file" 0 "fisher_divergence = " -- "$bin/inspect" show run.h5

echo "cli: 14b. reports follow their results files (inspect report)"
mkdir -p reports && cp precious.h5 reports/grid.h5 && cp run.h5 reports/ignored-run.h5
expect "inspect report" 0 "wrote reports/grid.md" -- "$bin/inspect" report --results reports
report_sum=$(sum reports/grid.md)
grep -q "| SSM | " reports/grid.md && ok "the report has the grid's SSM row" || bad "the report lacks the SSM row" "$(cat reports/grid.md)"
expect "inspect report again" 0 "wrote reports/grid.md" -- "$bin/inspect" report --results reports
unchanged "a report regenerated from the same file" reports/grid.md "$report_sum"
expect "inspect report --check, up to date" 0 "1 of 1 report(s) in reports match" -- "$bin/inspect" report --check --results reports
sed -i 's/| SSM | [0-9.]*/| SSM | 9.99/' reports/grid.md
expect "inspect report --check, an edited report" 1 "reports/grid.md differs from what its results file gives" -- "$bin/inspect" report --check --results reports
"$bin/inspect" report --results reports > /dev/null && cp jobs2.h5 reports/grid.h5
expect "inspect report --check, a recomputed results file" 1 "reports/grid.md differs" -- "$bin/inspect" report --check --results reports
rm reports/grid.md
expect "inspect report --check, a missing report" 1 "reports/grid.md is missing" -- "$bin/inspect" report --check --results reports
expect "inspect report, no such folder" 64 "--results: nowhere does not exist" -- "$bin/inspect" report --results nowhere

echo "cli: 15-16. the default config, pinned packages in the provenance"
expect "the default config from another folder" 64 "the default config is relative to the repository root" -- "$bin/figure1"
packages=$(h5dump -a /swift_packages jobs2.h5 | grep -o 'swift-argument-parser [0-9.]*, Yams [0-9.]*')
[ -n "$packages" ] && ok "results record the Swift packages ($packages)" || bad "no swift_packages attribute" "$(h5dump -A jobs2.h5 | head -40)"

echo "cli: 17. cells one at a time, then merged (issue 16)"
# precious.h5 holds tiny.yml's one cell; two.yml is the same config (same hash) with seeds 0 and 1.
expect "--list-cells" 0 "" -- "$bin/figure1" --config two.yml --out precious.h5 --list-cells
[ "$(grep -v '^figure1:' <<<"$out")" = "ssm_d2_seed1" ] && ok "--list-cells prints the one missing cell" || bad "--list-cells output" "$out"
expect "--cell of a cell in the results file" 0 "already computed" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed0
expect "--cell not in the grid" 64 "--list-cells prints" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed7
expect "--cell with --jobs 2" 64 "--jobs" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed1 --jobs 2
expect "--cell with --list-cells" 64 "cannot be combined" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed1 --list-cells
nothing_left "refused --cell" precious.cells
expect "--cell" 0 "written to precious.cells/ssm_d2_seed1.h5" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed1
unchanged "--cell never writes the results file" precious.h5 "$grid_sum"
expect "--list-cells, all computed" 0 "0 of 2 cells" -- "$bin/figure1" --config two.yml --out precious.h5 --list-cells
expect "--cell again" 0 "already computed" -- "$bin/figure1" --config two.yml --out precious.h5 --cell ssm_d2_seed1
cp precious.h5 merged.h5
expect "inspect merge" 0 "1 new cell(s)" -- "$bin/inspect" merge precious.cells --into merged.h5
merged_sum=$(sum merged.h5)
expect "inspect merge again" 0 "merged.h5 unchanged" -- "$bin/inspect" merge precious.cells --into merged.h5
unchanged "a second merge" merged.h5 "$merged_sum"
expect "merged = --jobs 2, bit for bit" 0 "2 cell(s) in both" -- "$bin/inspect" compare merged.h5 jobs2.h5
expect "inspect compare, a difference" 1 "ssm_d2_seed1: only in" -- "$bin/inspect" compare precious.h5 merged.h5
cp precious.h5 resume.h5 && mkdir resume.cells && cp precious.cells/ssm_d2_seed1.h5 resume.cells/
expect "a local run merges per-cell files first" 0 "merged 1 cell(s) computed one at a time" -- "$bin/figure1" --config two.yml --out resume.h5
if grep -q "ssm D=2 seed=1\] train" <<<"$out"; then bad "a local run after --cell: computed the cell again" "$out"; else ok "a local run after --cell: nothing computed again"; fi
expect "merged locally = --jobs 2" 0 "2 cell(s) in both" -- "$bin/inspect" compare resume.h5 jobs2.h5
mkdir bad.cells && head -c 2000 precious.cells/ssm_d2_seed1.h5 > bad.cells/ssm_d2_seed1.h5
cp precious.h5 target.h5; target_sum=$(sum target.h5)
expect "merge of a truncated per-cell file" 64 "bad.cells/ssm_d2_seed1.h5 cannot be read" -- "$bin/inspect" merge bad.cells --into target.h5
unchanged "a refused merge" target.h5 "$target_sum"
expect "merge of a folder that is not there" 64 "does not exist" -- "$bin/inspect" merge nowhere.cells --into target.h5

echo "cli: 18. --submit slurm: checked first, scripts on --dry-run, sbatch run as documented"
mkdir empty fake
expect "--submit without sbatch on PATH" 64 "sbatch is not on PATH" -- env PATH="$work/empty" "$bin/figure1" --config two.yml --out sub.h5 --submit slurm
nothing_left "--submit without sbatch" sub.h5 sub.slurm sub.cells
expect "a SLURM flag without --submit" 64 "only apply with --submit" -- "$bin/figure1" --config two.yml --out sub.h5 --partition short
expect "--submit --time 1h" 64 "not a SLURM time" -- "$bin/figure1" --config two.yml --out sub.h5 --submit slurm --time 1h
expect "--submit --dry-run" 0 "#SBATCH --array=0-1%1" -- env PATH="$work/empty" "$bin/figure1" --config two.yml --out dry.h5 --submit slurm --dry-run --max-parallel 1
[ -f dry.slurm/array.sbatch ] && [ -f dry.slurm/merge.sbatch ] && [ ! -e dry.h5 ] && [ ! -e dry.slurm/submissions ] \
  && ok "--dry-run wrote the two scripts, submitted nothing" || bad "--dry-run files" "$(ls -R dry.* 2>&1)"
# A stand-in sbatch (prints job ids 101, 102, …; logs its arguments) and squeue (lists the jobs in fake/queued).
cat > fake/sbatch <<'EOS'
#!/bin/bash
echo "$@" >> "$(dirname "$0")/sbatch.log"
n=$(( $(cat "$(dirname "$0")/next" 2>/dev/null || echo 101) ))
echo $((n + 1)) > "$(dirname "$0")/next"
echo "$n;cluster1"
EOS
cat > fake/squeue <<'EOS'
#!/bin/bash
cat "$(dirname "$0")/queued" 2>/dev/null
EOS
chmod +x fake/sbatch fake/squeue
expect "--submit slurm" 0 "submitted array job 101 (2 tasks" -- env PATH="$work/fake:$PATH" "$bin/figure1" --config two.yml --out sub.h5 --submit slurm --partition short --time 30
calls=$(cat fake/sbatch.log)
if [ "$(sed -n 1p <<<"$calls")" = "--parsable sub.slurm/array.sbatch" ] && [ "$(sed -n 2p <<<"$calls")" = "--parsable --dependency=afterany:101 sub.slurm/merge.sbatch" ] \
   && grep -q "^#SBATCH --partition=short$" sub.slurm/array.sbatch && grep -q "array=101 merge=102 cells=2" sub.slurm/submissions && [ -f sub.h5 ]
then ok "sbatch: the array, then the merge after it; recorded in sub.slurm/submissions"; else bad "sbatch calls" "$calls"$'\n'"$(cat sub.slurm/submissions 2>&1)"; fi
echo 102 > fake/queued
expect "--submit while the last submission is queued" 64 "still queued or running (jobs 102" -- env PATH="$work/fake:$PATH" "$bin/figure1" --config two.yml --out sub.h5 --submit slurm
rm fake/queued
# A cluster whose MaxArraySize is 2 (a stand-in scontrol): three cells go in two arrays, the second
# after the first (--max-parallel), the merge after both.
printf '#!/bin/bash\necho "MaxArraySize            = 2"\n' > fake/scontrol && chmod +x fake/scontrol
rm -f fake/sbatch.log
expect "--submit, more cells than MaxArraySize" 0 "submitted array jobs 103, 104 (3 tasks, at most 1 at once in 2 arrays of at most 2" -- env PATH="$work/fake:$PATH" "$bin/figure1" --config two.yml --seeds 0,1,2 --out split.h5 --submit slurm --max-parallel 1
expected_calls="--parsable --array=0-1%1 --export=ALL,SSM_TASK_OFFSET=0 split.slurm/array.sbatch
--parsable --dependency=afterany:103 --array=0-0%1 --export=ALL,SSM_TASK_OFFSET=2 split.slurm/array.sbatch
--parsable --dependency=afterany:103:104 split.slurm/merge.sbatch"
[ "$(cat fake/sbatch.log)" = "$expected_calls" ] && grep -q "array=103,104 merge=105 cells=3" split.slurm/submissions \
  && ok "sbatch: two arrays (offsets 0 and 2), the merge after both" || bad "split submission" "$(cat fake/sbatch.log split.slurm/submissions)"
printf '#!/bin/bash\necho "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n' > fake/sbatch
expect "figure2 stays local (it times iterations)" 64 "Unknown option '--submit'" -- "$bin/figure2" --config two.yml --out f2.h5 --submit slurm
expect "sbatch refuses" 1 "invalid partition specified: nope" -- env PATH="$work/fake:$PATH" "$bin/figure1" --config two.yml --out sub.h5 --submit slurm --partition nope

echo "cli: 19. train-network: bad input is refused before compute; a NaN stops the run with its step"
net=(--dataset 8gaussians --method ssm_vr --train 200 --epochs 1 --hidden 8 --out net.h5)
expect "train-network, an unknown dataset" 64 "--dataset: unknown dataset 'moons'; choose one of 8gaussians, rings, 2spirals, checkerboard, ncsn_mixture" -- "$bin/train-network" "${net[@]}" --dataset moons
expect "train-network, an unknown model kind" 64 "--model: unknown model kind 'flow'; choose one of energy, score" -- "$bin/train-network" "${net[@]}" --model flow
expect "train-network, a width of 0" 64 "--hidden: widths must be integers ≥ 1, got '8,0'" -- "$bin/train-network" "${net[@]}" --hidden 8,0
expect "train-network --sigma 0" 64 "--sigma must be finite and > 0" -- "$bin/train-network" "${net[@]}" --method dsm --sigma 0
expect "train-network, DEEN on a score network" 64 "the deen estimator is defined through a log-density" -- "$bin/train-network" "${net[@]}" --model score --method deen
expect "train-network, CP on a network" 64 "needs a model with layer structure" -- "$bin/train-network" "${net[@]}" --method cp
expect "train-network, a noise-conditional network on rings" 64 "choose 8gaussians or ncsn_mixture, not rings" -- "$bin/train-network" "${net[@]}" --model noise_conditional --method dsm --dataset rings
nothing_left "train-network's refused runs" net.h5
expect "train-network, a step that overflows" 1 "became NaN or infinite in stage 'training' at iteration" -- "$bin/train-network" "${net[@]}" --model score --method ssm --learning-rate 1e300
nothing_left "train-network stopped by a NaN" net.h5 "net.h5.tmp-*"
expect "train-network" 0 "8gaussians energy ssm_vr seed=0: " -- "$bin/train-network" "${net[@]}"
fd=$(h5dump -d /metrics/fisher_divergence net.h5 | grep -o '(0): [0-9.e+-]*' | cut -d' ' -f2)
[ -n "$fd" ] && h5dump -n net.h5 | grep -q "metrics/checkpoint/layer1.W" && h5dump -n net.h5 | grep -q "metrics/langevin_samples" \
  && ok "train-network wrote metrics (Fisher divergence $fd), samples and parameters" || bad "train-network's file" "$(h5dump -n net.h5 | head -30)"
expect "train-network onto an existing file" 64 "rerun with --fresh" -- "$bin/train-network" "${net[@]}"
cat > tiny5.yml <<'YAML'
methods: [dsm]
models: [energy]
datasets: [8gaussians, rings]
seeds: [0]
dims: [2]
networks: {hidden: [4], train: 200, test: 20, epochs: 1, chains: 10, langevin_steps: 2}
YAML
expect "figure5 --cell, a tiny network grid" 0 "dsm_energy_8gaussians_seed0 done" -- "$bin/figure5" --config tiny5.yml --out tiny5.h5 --cell dsm_energy_8gaussians_seed0
expect "inspect show names a network grid's missing cells" 0 "dsm_energy_rings_seed0" -- "$bin/inspect" show tiny5.cells/dsm_energy_8gaussians_seed0.h5
sed 's/epochs: 1,/epochs: 1, learning_rate: 1e300,/' tiny5.yml > nan5.yml
expect "figure5: a diverging training is a recorded outcome, the grid completes" 0 "recorded as diverged" -- "$bin/figure5" --config nan5.yml --out nan5.h5
grep -q "Diverged (the loss or its gradient became NaN or infinite; no metrics): DSM, energy network, seed 0: diverged at training step" nan5.md \
  && ok "figure5's report names the diverged cells" || bad "figure5's report on diverged cells" "$(cat nan5.md)"

echo "cli: 20. figure6: bad input is refused before compute; a tiny grid runs and reports"
cat > tiny6.yml <<'YAML'
methods: [ssm_vr]
kernel_estimators: [stein, ssge]
targets: [standard_normal]
dims: [2]
sample_counts: [30]
seeds: [0]
estimation:
  test: 20
  held_out: 20
  network: {hidden: [4], steps: 5}
  kernels: {etas: [0.01], thresholds: [0.99], bandwidth_factors: [1.0]}
YAML
sed 's/sample_counts: \[30\]/sample_counts: [1]/' tiny6.yml > m1.yml
expect "figure6, M below 2" 64 "key 'sample_counts': must be a non-empty list of sample counts ≥ 2" -- "$bin/figure6" --config m1.yml --out f6.h5
sed 's/bandwidth_factors: \[1.0\]/bandwidth_factors: [0]/' tiny6.yml > h0.yml
expect "figure6, a bandwidth of 0" 64 "key 'estimation.kernels.bandwidth_factors': must be a non-empty list of finite numbers > 0" -- "$bin/figure6" --config h0.yml --out f6.h5
sed 's/thresholds: \[0.99\]/thresholds: [1.5]/' tiny6.yml > t15.yml
expect "figure6, an eigenvalue threshold above 1" 64 "key 'estimation.kernels.thresholds': must be a non-empty list of numbers in (0, 1]" -- "$bin/figure6" --config t15.yml --out f6.h5
expect "figure6 --dims 0" 64 "--dims: must be a non-empty list of integers ≥ 1" -- "$bin/figure6" --config tiny6.yml --out f6.h5 --dims 0
sed 's/kernel_estimators: \[stein, ssge\]/kernel_estimators: [parzen]/' tiny6.yml > k.yml
expect "figure6, an unknown kernel estimator" 64 "key 'kernel_estimators': must be a list of distinct kernel score estimators from stein, ssge" -- "$bin/figure6" --config k.yml --out f6.h5
sed 's/methods: \[ssm_vr\]/methods: [deen]/' tiny6.yml > deen6.yml
expect "figure6, DEEN on a score network" 64 "deen cannot train a score network" -- "$bin/figure6" --config deen6.yml --out f6.h5
nothing_left "figure6's refused runs" f6.h5 f6.md
expect "figure6, a tiny grid" 0 "5/5 cells in the file" -- "$bin/figure6" --config tiny6.yml --out f6.h5
grep -q "| Stein (tuned on held-out samples) |" f6.md && grep -q "## Where the paper's claim holds" f6.md \
  && ok "figure6's report has the kernel rows and the claim" || bad "figure6's report" "$(cat f6.md)"

nothing_left "the whole run" "*.tmp-*" "*/*.tmp-*" ".*.cells" "*.cells/*.tmp-*"
echo "cli: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
