#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# 1,000 tasks (a server and 999 children) checkpoint and restart, twice, with the same tree.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

cr_start cr_tree forks $T 999
tap_check "the 1000 tasks are ready" cr_ready
tree_snapshot $PID >$T/tree
tap_check "the tree has 1000 processes and 143 grandchildren" test "$(wc -l <$T/tree)" -eq 1143
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart 1143 tasks" cr_cycle $n
	tap_check "cycle $n: the same tree" same_tree $PID $T/tree
	tap_check "cycle $n: the server still serves" cr_round $n
done
cr_cleanup
tap_finish
