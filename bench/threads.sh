#!/bin/bash
# bench/threads.sh -- how much two (or more) threads speed layers up.
#
#   bench/threads.sh [SEPCONV...]          (default: build/sepconv)
#
# For each layer runs `sepconv jit LAYERS --only NAME --backend cc --target
# TARGET --threads 1` and `--threads THREADS`, ROUNDS times each, every
# binary given and both thread counts interleaved within a round (so that
# two builds meet the same noise), and prints per binary and layer the
# median run time of each thread count, their ratio, and the ratio of the
# fastest rounds (what a quiet machine gives).  Each jit figure is itself
# the median of REPEAT runs.  Environment (defaults): LAYERS
# (examples/mobilenet_v1.layers), NAMES (sep1 .. sep6: the layers above
# 14x14), THREADS (2), ROUNDS (3), REPEAT (21), TARGET (avx512).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- "$root/build/sepconv"
layers=${LAYERS:-$root/examples/mobilenet_v1.layers}
names=${NAMES:-sep1 sep2 sep3 sep4 sep5 sep6}
threads=${THREADS:-2} rounds=${ROUNDS:-3} repeat=${REPEAT:-21} target=${TARGET:-avx512}

# the median run ms of layer $3 by binary $1 on $2 threads
run_ms() {
    local ms
    ms=$("$1" jit "$layers" --only "$3" --backend cc --target "$target" --threads "$2" \
             --repeat "$repeat" | awk -v n="$3" '$1 == n { print $3 }')
    [ -n "$ms" ] || { echo "bench/threads.sh: $1 gave no time for $3" >&2; exit 1; }
    echo "$ms"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
least() { tr ' ' '\n' | grep . | sort -g | head -n1; }

echo "# $target, $rounds rounds of a median of $repeat runs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-5s %10s %10s %8s %8s\n' layer build "1 thr ms" "$threads thr ms" speedup quiet
for name in $names; do
    declare -A one=() many=()
    for _ in $(seq "$rounds"); do
        for b in $(seq $#); do
            one[$b]="${one[$b]:-} $(run_ms "${!b}" 1 "$name")"
            many[$b]="${many[$b]:-} $(run_ms "${!b}" "$threads" "$name")"
        done
    done
    for b in $(seq $#); do
        awk -v n="$name" -v b="$b" -v a="$(echo "${one[$b]}" | median)" \
            -v m="$(echo "${many[$b]}" | median)" -v qa="$(echo "${one[$b]}" | least)" \
            -v qm="$(echo "${many[$b]}" | least)" \
            'BEGIN { printf "%-8s %-5s %10.3f %10.3f %7.2fx %7.2fx\n", n, b, a, m, a / m, qa / qm }'
    done
    unset one many
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg); builds: $*"
