#!/usr/bin/env bash
# install_check.sh -- `make install` into a scratch root, then, from another
# working directory, build the JIT example against the installed library with
# pkg-config and run it, and run the installed CLI's JIT.  Proves the tcc
# backend finds what it needs after installation, wherever it runs from, that
# the shared library carries its versioned SONAME (what programs record and
# the loader looks for), and that `make uninstall` takes everything away.
# BUILD names the build directory to install from (default build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
stage=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$stage" "$work"' EXIT
fail() { echo "install check: $*" >&2; exit 1; }

make -C "$root" --no-print-directory install BUILD="$build" DESTDIR="$stage" \
  PREFIX=/usr/local >/dev/null
lib="$stage/usr/local/lib"
version=$(sed -n 's/^#define SEPCONV_VERSION "\(.*\)"/\1/p' "$root/runtime/sepconv.h")
soname="libsepconv.so.${version%%.*}"

# the file carries the full version; the SONAME link and the -l name point at it
[ -f "$lib/libsepconv.so.$version" ] && [ ! -L "$lib/libsepconv.so.$version" ] ||
  fail "$lib/libsepconv.so.$version is missing or not a regular file"
[ "$(readlink "$lib/$soname")" = "libsepconv.so.$version" ] ||
  fail "$lib/$soname should link to libsepconv.so.$version"
[ "$(readlink "$lib/libsepconv.so")" = "$soname" ] ||
  fail "$lib/libsepconv.so should link to $soname"
# (read whole first: grep -q stopping early would fail the pipe under pipefail)
dynamic=$(readelf -d "$lib/libsepconv.so")
grep -q "(SONAME).*\[$soname\]" <<<"$dynamic" ||
  fail "libsepconv.so should have SONAME $soname; readelf -d shows: $(grep SONAME <<<"$dynamic")"

export PKG_CONFIG_PATH="$lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"
cd "$work"
cc -std=c11 -O2 -Wall -Werror "$root/examples/jit/jit_example.c" \
   $(pkg-config --cflags --libs sepconv) -Wl,-rpath,"$lib" -o jit_example
# linked against the shared library (the linker prefers it to the .a), which
# the program names by its SONAME, not by the file it was linked with
dynamic=$(readelf -d jit_example)
grep -q "(NEEDED).*\[$soname\]" <<<"$dynamic" ||
  fail "jit_example should record NEEDED $soname; readelf -d shows: $(grep NEEDED <<<"$dynamic")"
./jit_example
"$stage/usr/local/bin/sepconv" jit op=dw df=8 m=4 dk=3 --repeat 3

make -C "$root" --no-print-directory uninstall BUILD="$build" DESTDIR="$stage" \
  PREFIX=/usr/local >/dev/null
left=$(find "$stage" \( -type f -o -type l \) | sed "s|^$stage||")
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install check: passed"
