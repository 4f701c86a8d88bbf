#!/bin/bash
# check_layers.sh -- fails when libsepconv's rooms depend on each other in a
# direction the table below does not allow, or when files form a cycle.
#
#   tools/check_layers.sh [SOURCE_ROOT [BUILD_DIR]]
#
# Two views of the same rule, so neither a stray #include nor a call through
# sepconv.h (which every room includes) slips past:
#   includes  every #include "..." in runtime/, gen/, bench/, examples/,
#             tools/ must name a header of its own room or of a room it may use;
#   symbols   every function or object an object file of the library uses
#             from another object must come from its own room or one it may
#             use, and the objects' uses must not form a cycle.
# The symbol check runs when BUILD_DIR holds the built objects.
set -u
ROOT=${1:-.}
BUILD=${2:-build}

# room: the rooms it may use (lowest first).  sepconv.h, the public header at
# runtime/'s top, declares and defines nothing and includes no project file:
# every room may include it.
declare -A USES=(
  [runtime/core]=""
  [runtime/layer]="runtime/core"
  [runtime/reference]="runtime/core runtime/layer"
  [runtime/generate]="runtime/core runtime/layer"
  [runtime/microkernels]="runtime/core"
  [runtime/backend]="runtime/core runtime/microkernels"
  [runtime/log]="runtime/core runtime/layer runtime/microkernels runtime/backend"
  [runtime/kernel]="runtime/core runtime/layer runtime/reference runtime/generate runtime/microkernels runtime/backend runtime/log"
  [runtime/tune]="runtime/core runtime/layer runtime/reference runtime/generate runtime/microkernels runtime/backend runtime/log runtime/kernel"
  [runtime/io]="runtime/core runtime/layer"
  [gen]="runtime/core runtime/layer runtime/reference runtime/generate runtime/microkernels runtime/backend runtime/log runtime/kernel runtime/tune runtime/io"
  [bench]=""
  [examples]=""
  [tools]=""
)

failures=0
fail() { echo "check_layers: $*" >&2; failures=$((failures + 1)); }

# The room of a path relative to ROOT: runtime/<room>, gen, bench, examples, tools.
room_of() {
  case $1 in
    runtime/sepconv.h) echo api ;;
    runtime/*/*) local rest=${1#runtime/}; echo "runtime/${rest%%/*}" ;;
    gen/* | bench/* | tools/*) echo "${1%%/*}" ;;
    examples/*) echo examples ;;
    *) echo other ;;
  esac
}

may_use() { # may_use FROM TO
  [ "$1" = "$2" ] || [ "$2" = api ] && return 0
  local r
  for r in ${USES[$1]-}; do [ "$r" = "$2" ] && return 0; done
  return 1
}

# The rooms' table itself must be a DAG naming only known rooms.
{
  for from in "${!USES[@]}"; do
    echo "$from $from"
    for to in ${USES[$from]}; do
      [ -n "${USES[$to]+x}" ] || fail "the table names an unknown room '$to'"
      echo "$from $to"
    done
  done
} | tsort >/dev/null 2>&1 || fail "the table of rooms has a cycle"

# Every room holds files and every library file sits in a room of the table.
for dir in "$ROOT"/runtime/*/; do
  room=runtime/$(basename "$dir")
  [ -n "${USES[$room]+x}" ] || fail "$room is not in the table of rooms (tools/check_layers.sh)"
done

# ---------------------------------------------------------------- includes
includes=0
while IFS= read -r file; do
  rel=${file#"$ROOT"/}
  from=$(room_of "$rel")
  [ "$from" = other ] && continue
  while IFS=: read -r line name; do
    includes=$((includes + 1))
    # resolve as the compiler does: the file's own folder, then -Iruntime
    if [ -f "$(dirname "$file")/$name" ]; then
      target=$(realpath --relative-to="$ROOT" "$(dirname "$file")/$name")
    elif [ -f "$ROOT/runtime/$name" ]; then
      target=$(realpath --relative-to="$ROOT" "$ROOT/runtime/$name")
    elif [ "$from" = examples ]; then
      continue # a header the example's own build generates (kernels.h)
    else
      fail "$rel:$line includes \"$name\", which is not a project header"
      continue
    fi
    to=$(room_of "$target")
    if [ "$rel" = runtime/sepconv.h ]; then
      fail "$rel:$line: the public header includes \"$name\"; it must stand alone"
    elif ! may_use "$from" "$to"; then
      fail "$rel:$line: $from includes $target, from $to, which it may not use" \
           "(allowed: ${USES[$from]:-the public header only})"
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
           sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done < <(find "$ROOT/runtime" "$ROOT/gen" "$ROOT/bench" "$ROOT/examples" "$ROOT/tools" \
              -name '*.[ch]' -type f | sort)

# ----------------------------------------------------------------- symbols
# the objects of today's sources only (a build tree may hold stale ones)
# (an instruction set's micro-kernels build only on its architecture)
objects=$(cd "$ROOT" && for c in runtime/*/*.c; do
  case $c in runtime/microkernels/avx*.c | runtime/microkernels/neon.c)
    [ -f "$BUILD/${c%.c}.o" ] || continue ;; esac
  echo "${c%.c}.o"; done)
for o in $objects; do
  [ -f "$BUILD/$o" ] || { objects=; break; }
done
edges=0
if [ -n "$objects" ]; then
  defined=$(mktemp)
  graph=$(mktemp)
  trap 'rm -f "$defined" "$graph"' EXIT
  for o in $objects; do
    nm --defined-only -g "$BUILD/$o" | awk -v o="$o" 'NF == 3 {print $3, o}'
  done | sort -k1,1 > "$defined"
  for o in $objects; do
    nm -u "$BUILD/$o" | awk '{print $NF}' | sort -u | join - "$defined" |
      awk -v o="$o" '$2 != o {print o, $2, $1}'
  done > "$graph"
  while read -r from_o to_o symbol; do
    edges=$((edges + 1))
    from=$(room_of "${from_o%.o}.c")
    to=$(room_of "${to_o%.o}.c")
    may_use "$from" "$to" ||
      fail "${from_o%.o}.c uses $symbol from ${to_o%.o}.c: $from may not use $to"
  done < "$graph"
  awk '{print $1, $2}' "$graph" | sort -u | tsort >/dev/null 2>"$defined.loop" ||
    fail "the library's files use each other in a cycle: $(tr '\n' ' ' < "$defined.loop")"
  rm -f "$defined.loop"
else
  echo "check_layers: the library is not built in $BUILD: symbols not checked (make first)" >&2
  failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
  echo "check_layers: $failures problem(s)" >&2
  exit 1
fi
echo "check_layers: $includes includes and $edges uses between files follow the rooms' order; no cycles"
