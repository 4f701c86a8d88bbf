#!/bin/bash
# check_shards.sh -- checks a sharded sweep and its merge, loudly.
#
#   check_shards.sh SEPCONV DIR SHARDS LAYERS BACKEND TARGET [TRIALS SEED]
#
# DIR holds shard-0.jsonl .. shard-{SHARDS-1}.jsonl (one `sepconv tune --shard
# I/SHARDS` each) and tuning.jsonl (`sepconv log merge` of them).  Checks:
#  - every shard log exists and each line is a record; every shard measured
#    every layer of LAYERS;
#  - the merged log holds exactly the shards' records: as many lines as
#    they have together, the same records;
#  - no candidate schedule of a layer was measured by two shards (the
#    shards cut the sweep, they do not repeat it) and, given TRIALS and
#    SEED, together they measured exactly the candidates of one unsharded
#    `tune --trials TRIALS --seed SEED` (run here into DIR/whole.jsonl);
#  - `sepconv log best` names every layer, each with the schedule of the
#    merged log's record of least ratio to the default (computed here
#    with jq from the records, not taken from sepconv).
# Exits 1 with a message naming the first failure.
set -euo pipefail
[ $# -ge 6 ] || { echo "usage: $0 SEPCONV DIR SHARDS LAYERS BACKEND TARGET [TRIALS SEED]" >&2; exit 2; }
sepconv=$1 dir=$2 shards=$3 layers=$4 backend=$5 target=$6 trials=${7:-} seed=${8:-}
fail() { echo "check_shards: FAILED: $*" >&2; exit 1; }
command -v jq >/dev/null || fail "jq is missing (apt-get install -y jq)"
merged=$dir/tuning.jsonl
[ -s "$merged" ] || fail "no merged log $merged"

# the layers' names and specs as `sepconv tune` writes them (name= kept)
names=$(sed -n 's/#.*//; s/.*name=\([A-Za-z0-9_]*\).*/\1/p' "$layers")
[ -n "$names" ] || fail "no named layers in $layers"
# a record's layer name, from its spec
name_of='(.spec | capture("name=(?<n>[A-Za-z0-9_]+)").n)'
# the default schedule of a layer (its spec on stdin's line), canonical
default_of() {
    "$sepconv" schedules "$1" --target "$target" --backend "$backend" --json |
        jq -r '[.knobs[] | "\(.name)=\(.default)"] | join(",")'
}
declare -A default=()
for n in $names; do
    spec=$(sed -n "s/#.*//; /name=$n /p" "$layers")
    default[$n]=$(default_of "$spec")
    [ -n "${default[$n]}" ] || fail "no default schedule for $n"
done

total=0 logs=()
for i in $(seq 0 $((shards - 1))); do
    log=$dir/shard-$i.jsonl
    logs+=("$log")
    [ -s "$log" ] || fail "shard $i/$shards wrote no log ($log)"
    lines=$(wc -l < "$log")
    records=$(jq -c 'select(.spec and .schedule and .status)' "$log" | wc -l) ||
        fail "$log is not JSON lines"
    [ "$lines" = "$records" ] || fail "$log: $records records in $lines lines"
    total=$((total + lines))
    for n in $names; do
        count=$(jq -s --arg n "$n" "map(select($name_of == \$n)) | length" "$log")
        [ "$count" -gt 0 ] || fail "shard $i/$shards measured nothing of layer $n"
    done
done

merged_lines=$(wc -l < "$merged")
[ "$merged_lines" = "$total" ] ||
    fail "the merged log has $merged_lines lines, the $shards shards $total"
key='[.spec, .schedule, .status, .timestamp, .median_ms, .ratio] | tostring'
diff <(cat "${logs[@]}" | jq -r "$key" | sort) <(jq -r "$key" "$merged" | sort) \
    >/dev/null || fail "the merged log's records are not the shards' records"

# candidates: each layer's schedules other than its default, per shard
candidates() {
    jq -r "$name_of + \" \" + .schedule" "$@" | while read -r n s; do
        [ "$s" = "${default[$n]:-}" ] || echo "$n $s"
    done | sort
}
repeated=$(for i in $(seq 0 $((shards - 1))); do candidates "$dir/shard-$i.jsonl" | uniq; done |
               sort | uniq -d)
[ -z "$repeated" ] || fail "shards measured the same candidates: $(echo "$repeated" | head -3)"
if [ -n "$trials" ]; then
    rm -f "$dir/whole.jsonl"
    "$sepconv" tune "$layers" --only sep --backend "$backend" --target "$target" \
        --strategy random --seed "$seed" --trials "$trials" --log "$dir/whole.jsonl" \
        --quiet >/dev/null || fail "the unsharded sweep failed"
    diff <(candidates "$dir/whole.jsonl" | uniq) <(candidates "${logs[@]}" | uniq) \
        >"$dir/whole.diff" || fail "the shards' candidates are not the unsharded sweep's" \
                                   "(< unsharded only, > shards only: $dir/whole.diff)"
fi

# log best: every layer, the schedule whose worst record has the least ratio
best=$("$sepconv" log best "$merged" --backend "$backend" --target "$target") ||
    fail "sepconv log best failed"
for n in $names; do
    chosen=$(echo "$best" | awk -v n="name=$n" '
        { for (i = 1; i <= NF; i++) if ($i == n) { getline; print $2; exit } }')
    [ -n "$chosen" ] || fail "log best names no schedule for $n:"$'\n'"$best"
    # each schedule judged by its worst record (a shard times its best again)
    least=$(jq -r -s --arg n "$n" "map(select(.status == \"ok\" and $name_of == \$n))
                                   | group_by(.schedule) | map(max_by(.ratio))
                                   | min_by([.ratio, .median_ms]) | .schedule" "$merged")
    [ "$chosen" = "$least" ] || fail "log best gives $n $chosen, the least worst ratio is $least's"
done
echo "check_shards: ok: $shards shards, $total records merged, every layer of" \
     "$(basename "$layers") tuned (${trials:+candidates as unsharded, }best checked)"
