#!/bin/bash
# test_slurm.sh -- the Slurm scripts run as Slurm would run them, on a
# machine without Slurm, and their result checked.
#
#   slurm/test_slurm.sh SEPCONV LAYERS DIR SHARDS TRIALS
#
# 1. By hand: tune_array.sbatch once per task with SLURM_ARRAY_TASK_ID and
#    SLURM_ARRAY_TASK_COUNT set as an array of SHARDS tasks sets them, then
#    merge.sbatch; check_shards.sh checks the logs, the merge and log best.
# 2. submit.sh, with a stand-in `sbatch` first on PATH that records its
#    arguments and runs the job: an array's tasks with the variables Slurm
#    sets, in --chdir; a job with --dependency=afterok:ID only once every
#    task of ID succeeded.  Checks the array is 0-(SHARDS-1) and the merge
#    depends on the array's id, then the result as in 1.
# 3. merge.sbatch refuses a sweep with a shard log missing.
# BACKEND (cc) and TARGET (portable) choose the tuning; the sweep is TRIALS
# candidates per layer (over all shards), seed 1.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 SEPCONV LAYERS DIR SHARDS TRIALS" >&2; exit 2; }
sepconv=$1 layers=$2 dir=$3 shards=$4 trials=$5
here=$(cd "$(dirname "$0")" && pwd)
check=$here/../check_shards.sh
backend=${BACKEND:-cc} target=${TARGET:-portable}
fail() { echo "test_slurm: FAILED: $*" >&2; exit 1; }
rm -rf "$dir" && mkdir -p "$dir"

# the merged log as check_shards.sh reads it: tuning.jsonl beside the shards
export SEPCONV=$sepconv LAYERS=$layers BACKEND=$backend TARGET=$target SEED=1 TRIALS=$trials
unset BUDGET SHARDS

echo "test_slurm: 1. the array's $shards tasks by hand, then the merge"
for i in $(seq 0 $((shards - 1))); do
    (cd "$dir" && OUT=$dir/by-hand SLURM_ARRAY_JOB_ID=100 SLURM_ARRAY_TASK_ID=$i \
         SLURM_ARRAY_TASK_COUNT=$shards SLURM_ARRAY_TASK_MIN=0 \
         SLURM_ARRAY_TASK_MAX=$((shards - 1)) "$here/tune_array.sbatch") >/dev/null ||
        fail "array task $i failed"
done
(cd "$dir" && OUT=$dir/by-hand SHARDS=$shards "$here/merge.sbatch") >"$dir/by-hand.out" ||
    fail "the merge job failed"
"$check" "$sepconv" "$dir/by-hand" "$shards" "$layers" "$backend" "$target" "$trials" 1

echo "test_slurm: 2. submit.sh through a stand-in sbatch"
mkdir -p "$dir/bin" "$dir/queue"
cat > "$dir/bin/sbatch" <<'STANDIN'
#!/bin/bash
# a stand-in sbatch: records its arguments, runs the job now (an array's
# tasks one after another), prints the job id as --parsable does
set -u
queue=${FAKE_SLURM_QUEUE:?}
id=$(( $(ls "$queue" | grep -c '\.args$') + 1000 ))
printf '%s\n' "$@" > "$queue/$id.args"
array="" dependency="" chdir=$PWD script=""
for a in "$@"; do
    case $a in
    --array=*) array=${a#--array=} ;;
    --dependency=*) dependency=${a#--dependency=} ;;
    --chdir=*) chdir=${a#--chdir=} ;;
    --*) ;;
    *) script=$a ;;
    esac
done
[ -n "$script" ] || { echo "sbatch: no script" >&2; exit 1; }
if [ -n "$dependency" ]; then
    after=${dependency#afterok:}
    [ "$after" != "$dependency" ] || { echo "sbatch: only afterok here" >&2; exit 1; }
    [ "$(cat "$queue/$after.status" 2>/dev/null)" = ok ] || {
        echo never > "$queue/$id.status"; echo "$id"; exit 0; } # pending for ever
fi
status=ok
if [ -n "$array" ]; then
    first=${array%-*} last=${array#*-}
    for t in $(seq "$first" "$last"); do
        (cd "$chdir" && SLURM_JOB_ID=$((id + t + 1)) SLURM_ARRAY_JOB_ID=$id \
             SLURM_ARRAY_TASK_ID=$t SLURM_ARRAY_TASK_COUNT=$((last - first + 1)) \
             SLURM_ARRAY_TASK_MIN=$first SLURM_ARRAY_TASK_MAX=$last \
             bash "$script" > "$queue/$id-$t.out" 2>&1) || status=failed
    done
else
    (cd "$chdir" && SLURM_JOB_ID=$id bash "$script" > "$queue/$id.out" 2>&1) || status=failed
fi
echo "$status" > "$queue/$id.status"
echo "$id"
STANDIN
chmod +x "$dir/bin/sbatch"
export FAKE_SLURM_QUEUE=$dir/queue
submitted=$(PATH=$dir/bin:$PATH OUT=$dir/submitted SHARDS=$shards "$here/submit.sh" \
                --partition=test) || fail "submit.sh failed"
echo "$submitted"
array_args=$dir/queue/1000.args merge_args=$dir/queue/1001.args
grep -qx -- "--array=0-$((shards - 1))" "$array_args" ||
    fail "the array is not 0-$((shards - 1)): $(tr '\n' ' ' < "$array_args")"
grep -qx -- "--dependency=afterok:1000" "$merge_args" ||
    fail "the merge does not wait for the array: $(tr '\n' ' ' < "$merge_args")"
grep -qx -- "--partition=test" "$merge_args" || fail "submit.sh dropped its sbatch arguments"
[ "$(tail -n1 "$merge_args")" = "$here/merge.sbatch" ] || fail "the second job is not the merge"
[ "$(cat "$dir/queue/1000.status")" = ok ] || fail "an array task failed: $dir/queue/1000-*.out"
[ "$(cat "$dir/queue/1001.status")" = ok ] || fail "the merge job failed: $dir/queue/1001.out"
"$check" "$sepconv" "$dir/submitted" "$shards" "$layers" "$backend" "$target" "$trials" 1
for n in $(sed -n 's/#.*//; s/.*name=\([A-Za-z0-9_]*\).*/\1/p' "$layers"); do
    grep -q "name=$n " "$dir/queue/1001.out" || fail "the merge job's log best omits $n"
done

echo "test_slurm: 3. a shard missing: the merge refuses"
mkdir -p "$dir/missing"
cp "$dir/by-hand"/shard-*.jsonl "$dir/missing/"
rm "$dir/missing/shard-1.jsonl"
if (OUT=$dir/missing SHARDS=$shards "$here/merge.sbatch") >"$dir/missing.out" 2>&1; then
    fail "merge.sbatch merged $((shards - 1)) of $shards shards"
fi
grep -q "no log from shard 1/$shards" "$dir/missing.out" || fail "merge: $(cat "$dir/missing.out")"
[ ! -e "$dir/missing/tuning.jsonl" ] || fail "merge.sbatch wrote a partial merge"
echo "test_slurm: ok"
