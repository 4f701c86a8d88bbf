#!/usr/bin/env bash
# install_check.sh -- `make install` into a scratch root, then, from another
# working directory, build the JIT example against the installed library with
# pkg-config and run it, and run the installed CLI's JIT.  Proves the tcc
# backend finds what it needs after installation, wherever it runs from.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$stage" "$work"' EXIT
make -C "$root" --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local >/dev/null
export PKG_CONFIG_PATH="$stage/usr/local/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"
cd "$work"
cc -std=c11 -O2 -Wall -Werror "$root/examples/jit/jit_example.c" \
   $(pkg-config --cflags --libs sepconv) -Wl,-rpath,"$stage/usr/local/lib" -o jit_example
./jit_example
"$stage/usr/local/bin/sepconv" jit op=dw df=8 m=4 dk=3 --repeat 3
echo "install check: passed"
