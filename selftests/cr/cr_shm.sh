#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Shared memory: a MAP_SHARED anonymous region and a memfd mapping, shared by parent and child,
# stay shared: what the child writes after the restart, the parent sees. The pages are stored
# once. Through two checkpoint/restart cycles.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 7

cr_start cr_tree shm $T
tap_check "the parent and child share memory" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "cycle $n: the child's writes reach the parent, the contents are intact" cr_round $n
done
crinfo --json $T/img.2 >$T/json
tap_check "each shared object is stored once" test "$(grep -c '"kind": "SHMEM"' $T/json)" -eq 2
crinfo $T/img.2 >$T/info
tap_check "crinfo shows both processes using each object" \
	test "$(grep -c 'objref [0-9]* shmem: ' $T/info)" -eq 2
cr_cleanup
tap_finish
