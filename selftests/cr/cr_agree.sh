#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Checkpoint and restart agree: a tree restart could not recreate (a zombie whose process
# group's leader was reaped) is refused by ckpt, with restart's own reason, and nothing is
# written that restart would refuse. Every image the other tests write passes restart --dry-run
# (cr_lib); here, a dry run also catches a corrupted image without creating a task.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 12

cr_start cr_tree orphangroup $T
tap_check "a zombie whose group leader was reaped waits" cr_ready
ckpt $PID -o $T/img --log $T/log 2>/dev/null
tap_ok $(($? == 0)) "ckpt refuses the tree"
tap_check "logfd gives restart's reason" \
	grep -q "restart could not recreate this tree: process [0-9]*: its group [0-9]* has no live leader in its session (not supported)" $T/log
tap_check "the image is marked failed, not left to look whole" sh -c "! crinfo $T/img >/dev/null 2>&1"
tap_check "the tree still runs" cr_round 1
cr_cleanup

T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
cr_start cr_counter $T/count 1000
tap_check "a counter runs" wait_for test -s $T/count
tap_check "ckpt writes an image" ckpt $PID -o $T/img
tap_check "restart --dry-run passes it" restart --dry-run -i $T/img
tap_check "restart --dry-run through a pipe passes it" sh -c "restart --dry-run -i - <$T/img"
size=$(stat -c %s $T/img)
head -c $((size / 2)) $T/img >$T/half
dry_fails() { ! restart --dry-run -i $1 >$T/out 2>&1 && grep -q "$2" $T/out; }
tap_check "restart --dry-run refuses a truncated image" dry_fails $T/half "truncated"
cp $T/img $T/flipped
cr_flip $T/flipped $((size - 100))
tap_check "restart --dry-run refuses a corrupted image" dry_fails $T/flipped "checksum"
tap_check "the dry runs created no task: the counter is alone in its cgroup" \
	test "$(wc -l </sys/fs/cgroup/cr-$PID/cgroup.procs)" -eq 1
cr_cleanup
tap_finish
