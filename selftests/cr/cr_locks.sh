#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# File locks: an exclusive flock, a shared flock through an open file two processes share and
# another through the child's own, POSIX record locks of the parent and of the child on one
# file (writing, reading to the end), open file description locks, and a process waiting in
# fcntl(F_SETLKW), checkpointed, killed and restarted twice. /proc/locks must read the same
# after each restart, the waiter waiting again; then a new process checks every lock from
# outside, and the waiter takes the lock once the parent lets it go
# (selftests/helpers/cr_locks.c). A lock someone else took meanwhile fails the restart with a
# reason and no task left; corrupted LOCK records are refused at their offset.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

CHECKS="waiter-still-waits flock-exclusive-held flock-shared-held flock-shared-shares
	posix-write-held posix-gap-free posix-read-to-end-held posix-read-shares ofd-write-held
	ofd-gap-free ofd-read-to-end-held prober-ran waiter-takes-released-lock"
tap_plan $((14 + $(echo $CHECKS | wc -w)))

# locks: the /proc/locks lines of the test's files, without their ordinals, sorted.
locks() {
	inodes=$(for f in a b c d; do stat -c %i $T/l.$f; done | tr '\n' ' ')
	sed 's/^[0-9]*: //' /proc/locks | sed 's/  */ /g' | awk -v inodes=" $inodes" '{
		for (i = 1; i <= NF; i++)
			if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) {
				split($i, id, ":")
				if (index(inodes, " " id[3] " "))
					print
				break
			}
	}' | sort
}
# waiting: the waiter's request shows in /proc/locks.
waiting() {
	locks | grep -q -- '->'
}
# same_locks N: /proc/locks reads as it did before the first checkpoint.
same_locks() {
	locks >$T/locks.$1
	cmp -s $T/locks.0 $T/locks.$1
}

cr_start cr_locks $T/l
tap_check "the program took its locks, and a process waits for one" wait_for test -e $T/l.ready
# The waiter is asleep in F_SETLKW once /proc/locks shows its request.
tap_check "/proc/locks shows the locks and the waiting request" wait_for waiting
locks >$T/locks.0
tap_check "cycle 1: checkpoint, kill and restart" cr_cycle 1
tap_check "cycle 1: /proc/locks reads the same, the waiter waiting again" wait_for same_locks 1
[ -s $T/locks.1 ] && ! cmp -s $T/locks.0 $T/locks.1 && diff $T/locks.0 $T/locks.1 | sed 's/^/# /'

crinfo $T/img.1 >$T/info
count() { grep -c " LOCK .*kind=$1" $T/info; }
tap_ok $(($(count flock) != 3)) "crinfo shows three flocks ($(count flock))"
tap_ok $(($(count posix) != 3)) "crinfo shows three POSIX locks ($(count posix))"
tap_ok $(($(count ofd) != 2)) "crinfo shows two OFD locks ($(count ofd))"

tap_check "cycle 2: checkpoint and kill" ckpt $PID -o $T/img.2 --kill --log $T/ckpt.log.2
wait $RESTARTER 2>/dev/null
RESTARTER=
wait_for pid_gone $PID

# Corrupted LOCK records: the first one of image 2.
cr_corrupt $T/img.2 LOCK 4 '\011'
tap_check "a LOCK of an unknown kind: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"
cr_corrupt $T/img.2 LOCK 0 '\377\377'
tap_check "a LOCK naming no open file: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"

# Someone else holds OUT.a meanwhile: the restart cannot take the flock again.
cr_locks hold $T/l.a &
HOLDER=$!
wait_for sh -c "grep -q 'FLOCK.*WRITE $HOLDER ' /proc/locks"
tap_check "a lock taken by someone else meanwhile fails the restart, leaving no task" \
	cr_refused $T/img.2 "file lock cannot be taken again"
kill $HOLDER
wait $HOLDER 2>/dev/null

tap_check "cycle 2: restart" cr_restart $T/img.2 $T/restart.log.2 cr_locks
tap_check "cycle 2: /proc/locks reads the same, the waiter waiting again" wait_for same_locks 2
touch $T/l.go
cr_results $T/l.result "the program checks its locks" "$CHECKS"
cr_cleanup
tap_finish
