#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Assembles the VM's initramfs (busybox, cr.ko, the tools, the selftests and their helpers):
#
#   selftests/make-image.sh OUT KO KERNEL_PATH KSELFTEST_DIR TOOLS_BIN HELPERS SELFTESTS...
#
# It is rebuilt only when one of its inputs changed: their names, modes and contents are hashed into
# OUT/initramfs.key.
set -euo pipefail

out=$1 ko=$2 kernel=$3 kselftest=$4 tools_bin=$5 helpers=$6
shift 6
top=$(cd "$(dirname "$0")/.." && pwd)
tools=("$tools_bin"/{crinfo,ckpt,restart} "$tools_bin/examples/write-sample")
inputs=(/bin/busybox "$top/selftests/init" "$ko" "${tools[@]}" "$helpers"/* "$@"
	"$top/selftests/bench/scenarios.sh"
	"$kselftest/kselftest/ktap_helpers.sh" "$0")
# The modes too: a test made executable must reach the image.
key=$( (echo "$kernel"; for f in "${inputs[@]}"; do echo "$f"; stat -c %a "$f"; cat "$f"; done) | sha256sum | cut -c1-32)
if [[ -f $out/initramfs.cpio && -f $out/initramfs.key && $(cat "$out/initramfs.key") == "$key" ]]; then
	exit 0
fi

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,lib/modules,usr/lib/cr/bin,usr/lib/cr/selftests,usr/lib/cr/data}
cp /bin/busybox "$root/bin/busybox"
install -m 755 "$top/selftests/init" "$root/init"
cp "$ko" "$root/lib/modules/"
cp "$tools_bin"/{crinfo,ckpt,restart} "$helpers"/* "$root/usr/lib/cr/bin/"
install -m 755 "$top/selftests/bench/scenarios.sh" "$root/usr/lib/cr/bin/cr-bench-scenarios"
"$tools_bin/examples/write-sample" "$root/usr/lib/cr/data/sample.crimg"
cp "$@" "$kselftest/kselftest/ktap_helpers.sh" "$root/usr/lib/cr/selftests/"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc) >"$out/initramfs.cpio.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
echo "$kernel" >"$out/kernel-path"
echo "$key" >"$out/initramfs.key"
