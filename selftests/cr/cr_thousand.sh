#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A thousand tasks (a server, 999 children and 143 grandchildren; a twentieth of that on the debug
# kernel) checkpoint and restart, twice, with the same tree.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 8

CHILDREN=$(scale 999 49)
GRANDCHILDREN=$(((CHILDREN + 3) / 7))
TASKS=$((1 + CHILDREN + GRANDCHILDREN))
cr_start cr_tree forks $T $CHILDREN
tap_check "the $TASKS tasks are ready" cr_ready
tree_snapshot $PID >$T/tree
tap_check "the tree has $((1 + CHILDREN)) processes and $GRANDCHILDREN grandchildren" \
	test "$(wc -l <$T/tree)" -eq $TASKS
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart $TASKS tasks" cr_cycle $n
	tap_check "cycle $n: the same tree" same_tree $PID $T/tree
	tap_check "cycle $n: the server still serves" cr_round $n
done
cr_cleanup
tap_finish
