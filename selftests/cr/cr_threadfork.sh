#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Children forked by threads are part of the tree: one forked by a second thread (with a pipe
# to the root), one by a thread that exited since, and a grandchild forked by a thread of a
# child; each keeps its pid and parent through two cycles. A child with a parent-death signal
# forked by a thread is refused, since restart creates children from the main thread.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 14

cr_start cr_tree threadfork $T
tap_check "the tree with thread-forked children is ready" cr_ready
tree_snapshot $PID >$T/tree
tap_check "the tree has 3 processes with 2 extra threads, and 2 more children" \
	test "$(wc -l <$T/tree)" -eq 7
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "cycle $n: the image lists every task" \
		sh -c "crinfo $T/img.$n | grep -q 'TREE .* tasks=7\$'"
	tap_check "cycle $n: the same tree" same_tree $PID $T/tree
	tap_check "cycle $n: every child answers, with its parent, and the pipe works" cr_round $n
done
cr_cleanup

T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
cr_start cr_tree threadfork $T pdeath
tap_check "pdeath: the tree is ready" cr_ready
ckpt $PID -o $T/img --log $T/log 2>/dev/null
tap_ok $(($? == 0)) "pdeath: ckpt refuses a thread-forked child with a parent-death signal"
tap_check "pdeath: logfd names the task and the reason" \
	grep -q "task [0-9]*: a child with a parent-death signal was forked by a thread" $T/log
tap_check "pdeath: the tree still runs" cr_round 1
cr_cleanup
tap_finish
