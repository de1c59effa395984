#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: what cr does today, shown in the VM: a counter is checkpointed, killed and
# restarted with the same pid, and goes on counting.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
exec "$TOP/tools/vm-run" -- sh -c '
show() { printf "\n\$ %s\n" "$*"; "$@"; }
say() { printf "\n# %s\n" "$*"; }
cd /tmp
show crinfo --module

say "a counter, started in its own cgroup so that it can be frozen"
ckpt run -- cr_counter /tmp/count 100 &
PID=$!
sleep 1
show tail -n 1 /tmp/count

say "checkpoint it (freeze, write the image, kill)"
show ckpt $PID -o /tmp/counter.img --kill
wait $PID 2>/dev/null || true
show ls -l /tmp/counter.img
show crinfo /tmp/counter.img
sleep 0.5
say "it is dead: the count stopped at $(tail -n 1 /tmp/count)"
show sh -c "kill -0 $PID 2>&1 || true"

say "restart it: same pid, and it counts on from where it was"
show restart -i /tmp/counter.img --detach
sleep 1
show tail -n 3 /tmp/count
show grep -E "^(Name|Pid|State)" /proc/$PID/status

say "a corrupted image is refused, with the offset of the damage"
cp /tmp/counter.img /tmp/bad.img
printf "\\377" | dd of=/tmp/bad.img bs=1 seek=5000 conv=notrunc 2>/dev/null
kill -9 $PID
sleep 0.2
show sh -c "restart -i /tmp/bad.img || echo \"(restart exited \$?)\""
'
