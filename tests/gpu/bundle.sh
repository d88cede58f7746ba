#!/usr/bin/env bash
# bundle.sh [DIR] — sonde for a GPU machine without sonde's build dependencies (the
# device machine: Ubuntu, gcc, NVIDIA driver, PyTorch; no apt, so no libyaml, libpq,
# meson...). Builds a release
# sonde in DIR (default build-gpu, git-ignored) whose run path is DIR/lib, and
# copies there the shared libraries ldd lists, except glibc's own (the machine's
# are newer, and NVML, loaded at run time, needs them). Nothing outside sonde sees
# these libraries: no LD_LIBRARY_PATH, so the exec client's python3 and torch keep
# the machine's. Then, on that machine, from the repository root:
#   tests/gpu/gpu-check.sh DIR/sonde
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-gpu}
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" --buildtype=release -Dtests=disabled -Dfaiss=disabled \
    -Dc_link_args='-Wl,-rpath,$ORIGIN/lib -Wl,--disable-new-dtags' >/dev/null
fi
ninja -C "$dir" sonde >/dev/null
rm -rf "$dir/lib"
mkdir -p "$dir/lib"
ldd "$dir/sonde" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
  case $(basename "$lib") in
  libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
  *) cp -L "$lib" "$dir/lib/" ;;
  esac
done
readelf -d "$dir/sonde" | grep -q 'RPATH.*\$ORIGIN/lib' || {
  echo "bundle.sh: $dir/sonde has no \$ORIGIN/lib run path" >&2
  exit 1
}
echo "$dir: sonde $("$dir/sonde" --version | head -n1), $(ls "$dir/lib" | wc -l) libraries, $(du -sh "$dir" | cut -f1)"
echo "carry: [\"$dir\"]   run: tests/gpu/gpu-check.sh $dir/sonde"
