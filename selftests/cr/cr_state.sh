#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One process's state survives two checkpoint/restart cycles, one kind of state per target
# (cr_target MODE): each is started, checkpointed, killed and restarted with the same pid twice,
# and checks its own state after each restart.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

MIB=$(scale 256 16)
# mode|what the target checks after each restart
TABLE="files|shared offset, O_APPEND, directory fd, /dev/zero, /dev/urandom
heap|heap contents, brk growth and mmap
memory|$MIB MiB of patterned anonymous memory, byte for byte
misc|robust list, tid address, personality, umask, comm, pdeath signal, rlimit, ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (time left kept, and it fires)
signals|blocked pending SIGUSR2 delivered once with its value, sigaltstack, SIGUSR1 handler
vector|xmm/ymm registers in the middle of a loop
creds|distinct real, effective and saved uids and gids, groups, and no way back to root
hints|madvise hints: huge pages on and off, no fork copy, no dump, wipe on fork, mergeable"

# Five results per mode, and two more per cycle for creds.
tap_plan $((8 * 5 + 4))
# The table comes on fd 3, so that nothing in the loop reads it by accident; a here-document,
# not a pipe, so that the loop runs in this shell and its results count.
while IFS='|' read -r mode what <&3; do
	T=$(mktemp -d /tmp/cr-test.XXXXXX)
	RESTARTER=
	chmod 777 $T
	cr_start cr_target $mode $T $MIB
	tap_check "$mode: the target is ready" cr_ready
	for n in 1 2; do
		tap_check "$mode, cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
		tap_check "$mode, cycle $n: $what" cr_round $n
		if [ $mode = creds ]; then
			tap_check "creds, cycle $n: /proc shows uid 1004 1005 1006" \
				grep -qE "^Uid:\s+1004\s+1005\s+1006" /proc/$PID/status
			tap_check "creds, cycle $n: no capabilities" grep -qE "^CapEff:\s+0+$" /proc/$PID/status
		fi
	done
	cr_cleanup
done 3<<EOT
$TABLE
EOT
tap_finish
