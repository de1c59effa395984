#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# 16 threads hammering a counter under a mutex keep it consistent and keep running, each with
# its own tid, through two checkpoint/restart cycles.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 9

cr_start cr_tree threads $T 16
tap_check "the 16 threads run" cr_ready
tap_check "the counter is consistent before any checkpoint" cr_round 1
tree_snapshot $PID >$T/tree
tap_check "the process has 17 threads" test "$(wc -l <$T/tree)" -eq 17
for n in 2 3; do
	tap_check "cycle $n: checkpoint, kill and restart the threads" cr_cycle $n
	tap_check "cycle $n: the same tids" same_tree $PID $T/tree
	tap_check "cycle $n: the counter is consistent and every thread still counts" cr_round $n
done
cr_cleanup
tap_finish
