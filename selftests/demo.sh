#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: what cr does today, shown in the VM.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
exec "$TOP/tools/vm-run" -- sh -c '
show() { printf "\n\$ %s\n" "$*"; "$@"; }
show grep "^cr " /proc/modules
show ls -l /dev/cr
show crinfo --module
show crinfo /usr/lib/cr/data/sample.crimg
cp /usr/lib/cr/data/sample.crimg /tmp/bad.crimg
printf "\\377" | dd of=/tmp/bad.crimg bs=1 seek=100 conv=notrunc 2>/dev/null
printf "\n# the same image with byte 100 overwritten:"
show crinfo /tmp/bad.crimg || echo "(exit status $?)"
printf "\n# the image parser, run by KUnit inside the kernel when cr.ko loaded:\n"
show cat /sys/kernel/debug/kunit/cr_format/results
'
