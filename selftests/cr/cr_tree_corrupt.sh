#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A tree image corrupted in any task's records kills the whole restored tree cleanly: restart
# fails with the reason and its offset on the log, no task of the tree is left, and the kernel
# log stays clean (run_tests fails on any splat).
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 24

cr_start cr_tree forks $T 3
tap_check "a server with 3 children is ready" cr_ready
tree_snapshot $PID >$T/tree
pids=$(cut -d' ' -f1 $T/tree)
tap_check "checkpoint and kill the tree" ckpt $PID -o $T/img --kill
wait $PID 2>/dev/null
gone() { for p in $pids; do pid_gone $p || return 1; done; }
tap_check "the tree is gone" wait_for gone

# Offsets of the TASK records: the sections of the four tasks.
crinfo $T/img | awk '$2 == "TASK" { sub("@", "", $1); print $1 }' >$T/tasks
tap_check "the image has four task sections" test "$(wc -l <$T/tasks)" -eq 4

# try IMAGE WHAT: restart must fail, log why, and leave no task of the tree.
try() {
	rm -f $T/rlog
	restart -i "$1" --log $T/rlog >/dev/null 2>$T/rerr
	tap_ok $(($? == 0)) "$2: restart fails"
	named() { grep -qE "error at image offset [0-9]+: ." $T/rlog || cat $T/rlog $T/rerr; }
	tap_check "$2: the log names the error" named
	tap_check "$2: no task of the tree is left" wait_for gone
}
n=0
for off in $(cat $T/tasks); do
	n=$((n + 1))
	cp $T/img $T/bad
	# The pid field of the TASK record: that task finds another task's state.
	cr_flip $T/bad $((off + 9))
	try $T/bad "task $n's TASK record names another task"
done
size=$(wc -c <$T/img)
cp $T/img $T/bad
cr_flip $T/bad $((size - 200))
try $T/bad "a flipped byte in the last task's state (only the checksum sees it)"
head -c $(($(sed -n 3p $T/tasks) + 100)) $T/img >$T/short
try $T/short "the image cut inside the third task"
tap_check "the intact image still restarts" sh -c "restart -i $T/img --detach >/dev/null"
tap_check "with the same tree" same_tree $PID $T/tree
kill -9 $PID
cr_cleanup
tap_finish
