#!/bin/bash
# submit.sh -- a sepconv sweep as a Slurm array of SHARDS shards and a merge
# that runs when all of them have succeeded.
#
#   LAYERS=model.layers OUT=$PWD/sweep SHARDS=16 BUDGET=600 slurm/submit.sh [SBATCH_ARGS...]
#
# SBATCH_ARGS (e.g. --partition=zen4 --exclusive) go to both sbatch calls.
# Prints the two job ids; the best schedules end up in OUT/tuning.jsonl and
# the merge job's output.  The variables tune_array.sbatch reads (SEPCONV,
# BACKEND, TARGET, SEED, BUDGET, TRIALS) are exported to the jobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${LAYERS:?set LAYERS, the model file}" "${OUT:?set OUT, the directory of the logs}"
# the jobs start in OUT (--chdir): every path absolute
LAYERS=$(realpath "$LAYERS") OUT=$(realpath -m "$OUT")
export LAYERS OUT SHARDS=${SHARDS:-4} SEPCONV=${SEPCONV:-sepconv}
export BACKEND=${BACKEND:-cc} TARGET=${TARGET:-auto} SEED=${SEED:-1}
[ -z "${TRIALS:-}" ] || export TRIALS
[ -z "${BUDGET:-}" ] || export BUDGET
mkdir -p "$OUT"
# --parsable prints "jobid" or "jobid;cluster"
array=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" --chdir="$OUT" "$@" \
            "$here/tune_array.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --chdir="$OUT" "$@" \
            "$here/merge.sbatch")
merge=${merge%%;*}
echo "submitted: tune array $array (tasks 0-$((SHARDS - 1))), merge $merge after it"
echo "  squeue -j $array,$merge; then: sepconv log best $OUT/tuning.jsonl --backend $BACKEND"
