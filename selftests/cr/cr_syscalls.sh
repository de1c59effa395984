#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A task interrupted in a restartable system call is back in it after restart, and a signal
# then interrupts it as it would have: pause(), and read() on a terminal, which restart
# re-attaches to its own terminal. (nanosleep: cr_counter.sh.)
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 16

in_syscall() {
	[ "$(cut -d' ' -f1 /proc/$PID/syscall)" = "$1" ]
}

cr_start cr_target pause $T
tap_check "pause: the target is ready" cr_ready
for n in 1 2; do
	tap_check "pause, cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "pause, cycle $n: back in pause()" wait_for in_syscall 34
	tap_check "pause, cycle $n: SIGUSR1 interrupts it with EINTR" cr_round $n
done
cr_cleanup

T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
TTY=/dev/ttyS0
# The test holds the terminal open too. Otherwise killing the target can be its last close,
# and an open that races that close fails with EAGAIN when a signal (SIGCHLD) is pending.
exec 9<$TTY
ckpt run -- cr_target ttyread $T <$TTY >/dev/null 2>&1 &
PID=$!
tap_check "ttyread: the target is ready, reading $TTY" cr_ready
RESTART_STDIN=$TTY
for n in 1 2; do
	tap_check "ttyread, cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "ttyread, cycle $n: back in read() on fd 0" wait_for in_syscall 0
	tap_check "ttyread, cycle $n: fd 0 is the restarter's terminal" \
		sh -c "[ \$(readlink /proc/$PID/fd/0) = $TTY ]"
	tap_check "ttyread, cycle $n: SIGUSR1 interrupts the read with EINTR" cr_round $n
done
cr_cleanup
exec 9<&-
tap_finish
