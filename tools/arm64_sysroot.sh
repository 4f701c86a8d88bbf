#!/usr/bin/env bash
# arm64_sysroot.sh SYSROOT -- the arm64 Debian packages the build and the
# tests need, unpacked into SYSROOT (never installed on the host: tcc:arm64
# would replace tcc:amd64 and libpthreadpool-dev:arm64 removes host
# packages).  `apt-get download PKG:arm64` + `dpkg-deb -x`, after
# `dpkg --add-architecture arm64` and `apt-get update`; the .debs are kept
# in SYSROOT/../debs and a package already unpacked is not fetched again.
set -euo pipefail
sysroot=${1:?usage: arm64_sysroot.sh SYSROOT}
mkdir -p "$sysroot"
sysroot=$(cd "$sysroot" && pwd)
debs="$(dirname "$sysroot")/debs"

# what the build links and the tests load, and what their .so's need
# (found with readelf -d below: liblua5.4 needs libstdc++, libc6-dev's
# headers need linux-libc-dev's asm/ ones)
packages="libc6 libc6-dev linux-libc-dev libgcc-s1 libstdc++6 libcrypt1 libcrypt-dev
  liblua5.4-0 liblua5.4-dev libtcc-dev tcc libjansson4 libjansson-dev
  libxxhash0 libxxhash-dev libpthreadpool0 libpthreadpool-dev libcpuinfo0
  libcpuinfo-dev check libsubunit0 libsubunit-dev"

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [ "$(id -u)" = 0 ]; then
    echo "arm64_sysroot: dpkg --add-architecture arm64 && apt-get update"
    dpkg --add-architecture arm64
    apt-get update -qq
  else
    echo "arm64_sysroot: apt knows no arm64 packages; as root run:" >&2
    echo "  dpkg --add-architecture arm64 && apt-get update" >&2
    exit 1
  fi
fi

mkdir -p "$sysroot" "$debs"
todo=""
for p in $packages; do
  [ -e "$debs/$p.unpacked" ] || todo="$todo $p:arm64"
done
if [ -n "$todo" ]; then
  echo "arm64_sysroot: apt-get download$todo"
  # the package lists may be missing arm64 (architecture added, never updated)
  if ! (cd "$debs" && apt-get download -q $todo >/dev/null 2>"$debs/download.log"); then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      (cd "$debs" && apt-get download -q $todo >/dev/null 2>"$debs/download.log") || {
        cat "$debs/download.log" >&2; exit 1; }
    else
      cat "$debs/download.log" >&2
      echo "arm64_sysroot: as root run: apt-get update" >&2
      exit 1
    fi
  fi
  for p in $todo; do
    p=${p%:arm64}
    deb=$(ls -t "$debs/${p}"_*_arm64.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || { echo "arm64_sysroot: no .deb for $p" >&2; exit 1; }
    dpkg-deb -x "$deb" "$sysroot"
    # no dpkg database here: the versions, for the build (libtcc's is recorded)
    echo "$p $(dpkg-deb -f "$deb" Version)" >> "$sysroot/.versions"
    touch "$debs/$p.unpacked"
  done
fi

# libc6-dev's linker scripts name /usr/lib/... and /lib/...: both trees
# exist here (no merged /usr), and --sysroot prefixes both.
# Every shared library the build links must find what it needs here.
missing=""
for so in "$sysroot"/usr/lib/aarch64-linux-gnu/lib{lua5.4,jansson,xxhash,pthreadpool,cpuinfo,subunit}.so.*; do
  [ -f "$so" ] || continue
  for need in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$sysroot/lib/aarch64-linux-gnu/$need" ] || \
      [ -e "$sysroot/usr/lib/aarch64-linux-gnu/$need" ] || \
      [ -e "$sysroot/lib/$need" ] || missing="$missing $need($(basename "$so"))"
  done
done
if [ -n "$missing" ]; then
  echo "arm64_sysroot: libraries missing from the sysroot:$missing" >&2
  exit 1
fi
touch "$sysroot/.complete"
