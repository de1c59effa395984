#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Open files stay distinct: a pipe's read end and write end, and a memfd, each opened a second
# time through /proc/self/fd, keep two open files with their own flags and offsets. A thread
# blocked in read() on a pipe of the shared descriptor table resumes. Two cycles each.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 10

cr_start cr_tree reopen $T
tap_check "reopen: the target is ready" cr_ready
for n in 1 2; do
	tap_check "reopen, cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "reopen, cycle $n: two open files per end, each with its own flags and offset" \
		cr_round $n
done
cr_cleanup

T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
cr_start cr_tree blocked $T
tap_check "blocked: a thread blocks in read() on a pipe" cr_ready
for n in 1 2; do
	tap_check "blocked, cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "blocked, cycle $n: the blocked reader gets the next byte" cr_round $n
done
cr_cleanup
tap_finish
