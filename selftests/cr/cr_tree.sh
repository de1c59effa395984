#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Process trees: a forking server with 50 children keeps its pids, ppids, process groups and
# session; zombies stay zombies (with their exit status and exit signal) until reaped; a child
# keeps its parent-death signal; an fd shared by parent and child still shares its offset. Each
# through two checkpoint/restart cycles.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 23

# forks: the tree is compared from /proc before the checkpoint and after each restart.
cr_start cr_tree forks $T 50
tap_check "forks: the server and its 50 children are ready" cr_ready
tree_snapshot $PID >$T/tree
tap_check "forks: the tree has 50 children and 7 grandchildren" test "$(wc -l <$T/tree)" -eq 58
for n in 1 2; do
	tap_check "forks, cycle $n: checkpoint, kill and restart the tree" cr_cycle $n
	tap_check "forks, cycle $n: same pids, ppids, process groups and session" same_tree $PID $T/tree
	tap_check "forks, cycle $n: the server still serves" cr_round $n
done
cr_cleanup

for mode in zombie sharedfd; do
	T=$(mktemp -d /tmp/cr-test.XXXXXX)
	RESTARTER=
	cr_start cr_tree $mode $T
	tap_check "$mode: the tree is ready" cr_ready
	tree_snapshot $PID >$T/tree
	for n in 1 2; do
		tap_check "$mode, cycle $n: checkpoint, kill and restart the tree" cr_cycle $n
		tap_check "$mode, cycle $n: the same tree" same_tree $PID $T/tree
		[ $mode = zombie ] && [ $n = 2 ] && touch $T/reap
		tap_check "$mode, cycle $n: $(case $mode in
			zombie) echo "zombies are still zombies, the child keeps its parent-death signal" ;;
			*) echo "a read in the child moves the parent's offset" ;;
			esac)" cr_round $n
	done
	no_zombies() { ! tree_snapshot $PID | grep -q Z; }
	[ $mode = zombie ] && tap_check "zombie: the zombies were reaped with status 42 and 7" no_zombies
	cr_cleanup
done
tap_finish
