#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Checkpoints do not fail at random: 100 checkpoints of a multi-threaded tree with a child,
# while a loop reads /proc/PID/cmdline, environ and maps of every task, all succeed (a passing
# reference is not a sharer). Two ckpt of one tree at once: one succeeds, the other gets EBUSY
# with its reason, and the tree runs on.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 11

COUNT=${CR_RACE_COUNT:-$(scale 100 25)}
MIB=$(scale 256 64)
cr_start cr_tree threadfork $T
tap_check "a tree with threads and children is ready" cr_ready
reader() {
	while [ ! -e $T/stop ]; do
		for t in $(tree_snapshot $PID | cut -d' ' -f1); do
			cat /proc/$t/cmdline /proc/$t/environ /proc/$t/maps >/dev/null 2>&1
		done
	done
}
reader &
READER=$!
many() {
	i=0
	while [ $i -lt $COUNT ]; do
		i=$((i + 1))
		ckpt $PID -o $T/img --log $T/log.$i || { cat $T/log.$i; return 1; }
	done
}
tap_check "$COUNT checkpoints with /proc readers racing all succeed" many
touch $T/stop
wait $READER
tap_check "the last image passes restart --dry-run" restart --dry-run -i $T/img
tap_check "the tree still runs" cr_round 1

cr_cleanup

# A checkpoint long enough to start a second one while it writes: 256 MiB of memory (64 under
# KASAN, which is slow enough).
T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
cr_start cr_target memory $T $MIB
tap_check "a $MIB MiB target is ready" cr_ready
ckpt $PID -o $T/a --log $T/log.a 2>$T/err.a &
A=$!
tap_check "the first ckpt is writing" wait_for test -s $T/a
ckpt $PID -o $T/b --log $T/log.b 2>$T/err.b
rb=$?
wait $A
ra=$?
tap_ok $ra "two ckpt at once: the first succeeds"
tap_ok $((rb == 0)) "two ckpt at once: the second fails"
tap_check "the second says another checkpoint is in progress (EBUSY)" \
	grep -q "another checkpoint of this cgroup is in progress (EBUSY)" $T/err.b
tap_check "the first wrote an image that passes restart --dry-run" restart --dry-run -i $T/a
tap_check "the target still runs, its memory intact" cr_round 1
cr_cleanup
tap_finish
