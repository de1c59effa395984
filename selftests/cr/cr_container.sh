#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A container: every task of a cgroup whose init is pid 1 of its own pid namespace, with its
# host name (UTS namespace) and a child whose session leader exited (restored with a ghost).
# ckpt --cgroup, then restart into a new pid namespace, twice.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 11

cg=/sys/fs/cgroup/cr-box
mkdir -p $cg
# Its output goes nowhere: a pipe to the test runner would be a leak, and refused.
cr_tree container $T $cg >/dev/null 2>&1 &
outside=$!
tap_check "the container runs" cr_ready
PID=$(cat $T/pid)
tree_snapshot $PID >$T/tree
tap_check "the container's init answers" cr_round 1
for n in 2 3; do
	checkpointed() {
		ckpt --cgroup $cg -o $T/img.$n --kill --log $T/ckpt.log.$n || {
			cat $T/ckpt.log.$n
			return 1
		}
	}
	checkpointed >$T/out 2>&1
	st=$?
	tap_ok $st "cycle $n: ckpt --cgroup"
	[ $st -eq 0 ] || { sed 's/^/# /' $T/out; break; }
	[ -n "$outside" ] && wait $outside 2>/dev/null
	tap_check "cycle $n: restart --dry-run passes the image" cr_dry_run $T/img.$n
	tap_check "cycle $n: restart into a new pid namespace" \
		sh -c "restart -i $T/img.$n --detach --log $T/restart.log.$n >$T/pid"
	PID=$(cat $T/pid)
	cg=/sys/fs/cgroup/cr-restart-1
	tap_check "cycle $n: init is pid 1 again, with its host name; the orphan keeps its session" \
		cr_round $n
	outside=
done
crinfo $T/img.3 >$T/info
tap_check "crinfo shows a container image with its host name" \
	sh -c "grep -q 'container=true' $T/info && grep -q 'nodename=cr-box' $T/info"
kill -9 $PID $outside 2>/dev/null
cr_cleanup
tap_finish
