#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A file of a tmpfs unlinked while open comes back unlinked, on the same tmpfs, with its mode,
# owner, size, content, times, open flags and offset; a memfd comes back as a memfd with its
# name, mode, size, content and seals. As root and as a non-root user, two cycles each. An
# unlinked file on another filesystem (ramfs) is refused with the reason.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 17

run() {
	who=$1
	T=$(mktemp -d /tmp/cr-test.XXXXXX)
	RESTARTER=
	chmod 777 $T
	mkdir $T/tmpfs && mount -t tmpfs -o mode=1777 cr-unlinked $T/tmpfs
	if [ $who = root ]; then
		cr_start cr_tree unlinked $T $T/tmpfs
	else
		CR_AS_USER=1000 cr_start cr_tree unlinked $T $T/tmpfs
	fi
	tap_check "$who: an unlinked tmpfs file and a memfd are open" cr_ready
	for n in 1 2; do
		tap_check "$who, cycle $n: checkpoint, kill and restart" cr_cycle $n
		tap_check "$who, cycle $n: fstat, flags, offset and content of both are the same" \
			cr_round $n
		tap_check "$who, cycle $n: the file is unlinked again" \
			sh -c "ls -l /proc/$PID/fd | grep -q '$T/tmpfs/.*(deleted)'"
	done
	kill -9 $PID
	wait
	umount $T/tmpfs
	cr_cleanup
}
run root
run user

T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
mkdir $T/ramfs && mount -t ramfs cr-ramfs $T/ramfs
cr_start cr_tree unlinked-ramfs $T $T/ramfs
tap_check "ramfs: an unlinked ramfs file is open" cr_ready
ckpt $PID -o $T/img --log $T/log 2>/dev/null
tap_ok $(($? == 0)) "ramfs: ckpt refuses it"
tap_check "ramfs: logfd says why" grep -q "unlinked file on a filesystem other than tmpfs" $T/log
kill -9 $PID
wait
umount $T/ramfs
cr_cleanup
tap_finish
