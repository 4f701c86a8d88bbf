#!/usr/bin/env bash
# run_suites.sh LOGDIR JOBS [--] COMMAND... -- the Check tests of
# tests/run_tests, each test case in its own process (CK_RUN_SUITE and
# CK_RUN_CASE), JOBS at a time.
#
# COMMAND is the test runner and whatever runs it (valgrind, qemu); its
# output goes to LOGDIR/suite-SUITE-CASE.log.  One line per test case as it
# ends (verdict, seconds, Check's summary), its SKIPPED lines, and a
# failure's messages or, when Check printed none (a valgrind report, a
# crash), the log's tail.  Exit 1 when any failed, 2 on a usage error.
#
# The slowest run first (SLOW_FIRST) so that the last to start are short
# and the jobs end together.  Each gets SUITE_SECONDS (default 3600) of
# wall time: with CK_FORK=no Check's own timeouts do not apply, and a hang
# must still end the run.  SUITES="a b" runs only those suites.
set -euo pipefail
logdir=${1:?usage: run_suites.sh LOGDIR JOBS [--] COMMAND...}
jobs=${2:?usage: run_suites.sh LOGDIR JOBS [--] COMMAND...}
shift 2
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "run_suites: no command to run" >&2; exit 2; }
case $jobs in ''|*[!0-9]*|0) echo "run_suites: JOBS must be a count >= 1, got '$jobs'" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$logdir"
suite_seconds=${SUITE_SECONDS:-3600}

# the units: every suite's test cases (tests/test_NAME.c: suite_create and
# tcase_create), as SUITE/CASE
units=$(for f in "$root"/tests/test_*.c; do
          suite=$(grep -o 'suite_create("[a-z_0-9]*")' "$f" | sed 's/.*("//; s/")//')
          for c in $(grep -o 'tcase_create("[a-z_0-9-]*")' "$f" | sed 's/.*("//; s/")//'); do
            echo "$suite/$c"
          done
        done)
# the slowest first (seconds on Zen 4: plain, under valgrind)
SLOW_FIRST="generator/grid tune/tune kernel/kernel backend/cc reliability/reliability
            cli/cli render/generate generator/window microkernels/sets generator/budget"
order=""
if [ -n "${SUITES:-}" ]; then
  for s in $SUITES; do
    found=$(grep -E "^$s(/|$)" <<<"$units" | tr '\n' ' ')
    [ -n "$found" ] || { echo "run_suites: no suite '$s' (defined: $(echo $units))" >&2; exit 2; }
    order="$order $found"
  done
else
  for u in $SLOW_FIRST; do grep -qx "$u" <<<"$units" && order="$order $u"; done
  for u in $units; do [[ " $order " == *" $u "* ]] || order="$order $u"; done
fi

# report UNIT STATUS SECONDS: the unit's lines, from its log
failed=""
checks=0
report() {
  local suite=$1 status=$2 seconds=$3 log="$logdir/suite-${1/\//-}.log" verdict=ok summary
  summary=$(grep -E '^[0-9]+%: Checks' "$log" | tail -n1 || true)
  if [ "$status" -ne 0 ]; then
    verdict=FAILED
    failed="$failed $suite"
    [ "$status" -eq 124 ] && summary="killed after SUITE_SECONDS=$suite_seconds s"
  fi
  local n
  n=$(sed -n 's/^[0-9]*%: Checks: \([0-9]*\),.*/\1/p' <<<"$summary")
  checks=$((checks + ${n:-0}))
  printf '   %-24s %-6s %5d s  %s\n' "$suite" "$verdict" "$seconds" "$summary"
  grep -E '^SKIPPED:' "$log" | sort -u | sed 's/^/      /' || true
  if [ "$verdict" = FAILED ]; then
    if grep -qE ':[EF]:' "$log"; then
      grep -E ':[EF]:' "$log" | head -n 40 | sed 's/^/      /'
    else
      tail -n 40 "$log" | sed 's/^/      /'
    fi
    echo "      (the whole log: $log)"
  fi
}

declare -A running=() started=()
start=$SECONDS
# reap: waits for one running unit to end and reports it
reap() {
  local done_pid status
  wait -n -p done_pid && status=0 || status=$?
  report "${running[$done_pid]}" "$status" $((SECONDS - started[$done_pid]))
  unset "running[$done_pid]"
}
for unit in $order; do
  while [ ${#running[@]} -ge "$jobs" ]; do reap; done
  CK_RUN_SUITE=${unit%/*} CK_RUN_CASE=${unit#*/} timeout --kill-after=10 "$suite_seconds" "$@" \
    > "$logdir/suite-${unit/\//-}.log" 2>&1 &
  running[$!]=$unit
  started[$!]=$SECONDS
done
while [ ${#running[@]} -gt 0 ]; do reap; done
echo "   $checks checks in $(wc -w <<<"$order") test cases, $jobs at a time: $((SECONDS - start)) s"
if [ -n "$failed" ]; then
  echo "run_suites: FAILED:$failed (logs: $logdir/suite-*.log)" >&2
  exit 1
fi
