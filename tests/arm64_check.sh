#!/usr/bin/env bash
# arm64_check.sh BUILD SYSROOT [SUITE...] -- the aarch64 build's Check suites
# under qemu-aarch64-static, the way `make check-arm64` runs them.
#
# The emulated programs find their loader and libraries (and libtcc its
# runtime files under /usr/lib/aarch64-linux-gnu/tcc) in SYSROOT: qemu -L
# prefixes the absolute paths they open with SYSROOT when the file is there.
# What they run is a host program, which the host kernel runs natively: so
# BUILD/arm64-bin, first on PATH, holds host scripts for the commands the
# tests run:
#   cc, gcc   the host's aarch64-linux-gnu-gcc: the cc backend's kernels are
#             aarch64 code, dlopen'ed by the emulated process.  qemu's CPU
#             ("max") is no -march gcc can detect from an x86 host, so
#             -march=native becomes -march=armv8.2-a (NEON, FMA).
#   clang     clang --target=aarch64-linux-gnu, -march=native likewise
#   tcc       the arm64 tcc command of the sysroot, itself under qemu
#   sepconv   the aarch64 CLI under qemu ($SEPCONV_CLI)
# SUITE...: the Check suites to run (default: all of them); each runs in
# its own process (tests/run_suites.sh, JOBS at a time) so that one failing
# does not hide the others, and each one's log stays in BUILD/suite-SUITE-CASE.log.
set -euo pipefail
build=$(cd "${1:?usage: arm64_check.sh BUILD SYSROOT [SUITE...]}" && pwd)
sysroot=$(cd "${2:?usage: arm64_check.sh BUILD SYSROOT [SUITE...]}" && pwd)
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
# the suites to run: the arguments, or all (run_suites.sh finds them)
suites=${*:-}
qemu=$(command -v qemu-aarch64-static) || {
  echo "arm64_check: qemu-aarch64-static is missing (apt-get install qemu-user-static)" >&2
  exit 1; }
cross=$(command -v aarch64-linux-gnu-gcc) || {
  echo "arm64_check: aarch64-linux-gnu-gcc is missing (apt-get install gcc-aarch64-linux-gnu)" >&2
  exit 1; }

bin="$build/arm64-bin"
mkdir -p "$bin"
# cc, gcc and clang: -march=native means the emulated CPU; an executable
# they link (no -c, -S, -E, -shared) is written as OUT.aarch64 and OUT is a
# script running it under qemu, as binfmt_misc would on a configured host
compiler() { # NAME COMMAND...
  cat > "$bin/$1" <<WRAPPER
#!/bin/bash
# written by tests/arm64_check.sh: $1 for the emulated aarch64 programs
args=() out= at= link=1 prev=
for a in "\$@"; do
  case \$a in
    -march=native) a=-march=armv8.2-a ;;
    -mtune=native) continue ;;
    -c|-S|-E|-shared|-M|-MM|--version|-dumpversion|-dumpmachine|-print-*) link=0 ;;
  esac
  if [ "\$prev" = -o ]; then out=\$a; at=\${#args[@]}; fi
  prev=\$a
  args+=("\$a")
done
[ \$link = 1 ] && [ -n "\$out" ] || exec ${*:2} "\${args[@]}"
args[\$at]=\$out.aarch64
${*:2} "\${args[@]}" || exit
case \$out in /*) real=\$out.aarch64 ;; *) real=\$PWD/\$out.aarch64 ;; esac
printf '#!/bin/sh\\nexec %s -L %s "%s" "\$@"\\n' "$qemu" "$sysroot" "\$real" > "\$out"
chmod +x "\$out"
WRAPPER
}
compiler cc "$cross"
compiler gcc "$cross"
if command -v clang >/dev/null; then compiler clang "$(command -v clang)" --target=aarch64-linux-gnu; fi
# tcc: the sysroot's arm64 tcc command, itself under qemu; sepconv: the CLI
printf '#!/bin/sh\nexec %s -L %s %s/usr/bin/tcc "$@"\n' "$qemu" "$sysroot" "$sysroot" > "$bin/tcc"
printf '#!/bin/sh\nexec %s -L %s %s/sepconv "$@"\n' "$qemu" "$sysroot" "$build" > "$bin/sepconv"
chmod +x "$bin"/*

export PATH="$bin:$PATH"
export SEPCONV_CLI="$bin/sepconv" SEPCONV_ROOT="$root"
export QEMU_LD_PREFIX="$sysroot"
# the cc backend's cache: this run's own, not the host's
export XDG_CACHE_HOME="$build/cache"
unset CC
# qemu runs the code 5-20x slower than the host: the suites' timeouts too
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
targets="$build/targets-exercised"
: > "$targets"
export SEPCONV_TEST_TARGETS="$targets"

run() { "$qemu" -L "$sysroot" "$@"; }

echo "== aarch64 under $("$qemu" --version | head -n1)"
run "$build/sepconv" --version | sed 's/^/   /'
failed=""
start=$SECONDS
# the suites, JOBS at a time (default: one per host CPU; qemu-user runs
# each emulated process on one host thread)
if ! SUITES="$suites" "$root/tests/run_suites.sh" "$build" "${JOBS:-$(nproc)}" \
       "$qemu" -L "$sysroot" "$build/tests/run_tests"; then
  failed="$failed suites"
fi

# what `make test` runs besides the suites: allocation counting, and the
# fuzz targets replayed over their corpora and regressions
if [ -x "$build/alloc_count" ]; then
  t0=$SECONDS
  if out=$(run "$build/alloc_count" 2>&1); then
    printf '   %-16s %-6s %4d s  %s\n' alloc_count ok $((SECONDS - t0)) "$out"
  else
    failed="$failed alloc_count"
    printf '   %-16s %-6s\n' alloc_count FAILED; sed 's/^/      /' <<<"$out"
  fi
fi
for replay in "$build"/replay/fuzz_*; do
  [ -x "$replay" ] || continue
  t=${replay##*/fuzz_}
  t0=$SECONDS
  if out=$(run "$replay" $(find "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t" \
             -type f 2>/dev/null) 2>&1); then
    printf '   %-16s %-6s %4d s  %s\n' "fuzz_$t" ok $((SECONDS - t0)) "$(tail -n1 <<<"$out")"
  else
    failed="$failed fuzz_$t"
    printf '   %-16s %-6s\n' "fuzz_$t" FAILED; sed 's/^/      /' <<<"$out" | tail -n 20
  fi
done

# NEON relu and relu6 on NaN and -0.0, bit for bit against the reference
t0=$SECONDS
if run "$build/neon_activations" > "$build/neon_activations.log" 2>&1; then
  printf '   %-16s %-6s %4d s  %s\n' neon-activations ok $((SECONDS - t0)) \
    "$(tail -n1 "$build/neon_activations.log")"
  echo "ran neon activations" >> "$targets"
else
  failed="$failed neon-activations"
  printf '   %-16s %-6s\n' neon-activations FAILED
  sed 's/^/      /' "$build/neon_activations.log"
fi

# a user's first commands, on the emulated CPU: auto is neon there
t0=$SECONDS
for backend in tcc cc; do
  if out=$(run "$build/sepconv" jit op=sep df=12 m=16 n=24 dk=3 bias=1 act=relu6 \
             --backend $backend --target auto 2>&1) && grep -q 'target neon' <<<"$out" &&
     grep -Eq ' yes$' <<<"$out"; then
    echo "ran neon cli jit --backend $backend" >> "$targets"
    printf '   %-16s %-6s %4d s  sepconv jit --backend %s --target auto: neon, verified\n' \
      "jit-$backend" ok $((SECONDS - t0)) $backend
  else
    failed="$failed jit-$backend"
    printf '   %-16s %-6s\n' "jit-$backend" FAILED
    sed 's/^/      /' <<<"$out"
  fi
  t0=$SECONDS
done

echo "== check-arm64: $((SECONDS - start)) s under qemu"
# what the tests recorded (tests/run_tests.c: "ran TARGET what" or
# "skip TARGET reason"), this script's own runs included
line="targets exercised:"
for t in portable neon avx2 avx512; do
  grep -q "^ran $t " "$targets" && line="$line $t"
done
for t in portable neon avx2 avx512; do
  grep -q "^ran $t " "$targets" && continue
  why=$(sed -n "s/^skip $t //p" "$targets" | head -n1)
  case $t in avx2|avx512) other="not this architecture" ;; *) other="not exercised" ;; esac
  line="$line ($t: ${why:+skipped, }${why:-$other})"
done
echo "$line"
if [ -n "$failed" ]; then
  echo "check-arm64: FAILED:$failed (logs: $build/suite-*.log)" >&2
  exit 1
fi
