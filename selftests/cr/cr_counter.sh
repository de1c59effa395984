#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A counter keeps counting from where it was, in nanosleep between lines, through two cycles;
# /proc/PID/maps is the same before and after; an image piped from ckpt to restart works.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 15

sequential() {
	awk 'NR != $1 { exit 1 }' $T/count
}
grows() {
	[ "$(tail -n 1 $T/count)" -gt "$1" ]
}

cr_start cr_counter $T/count 10
tap_check "the counter runs" wait_for grows 3
cat /proc/$PID/maps >$T/maps.before
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
	last=$(tail -n 1 $T/count)
	tap_check "cycle $n: the counter goes on counting" wait_for grows $((last + 3))
	tap_check "cycle $n: every value appears once, in order" sequential
	cat /proc/$PID/maps >$T/maps.after
	tap_check "cycle $n: /proc/PID/maps is unchanged" cmp $T/maps.before $T/maps.after
done

tap_check "crinfo decodes the image: task, files, memory, registers" sh -c "
	crinfo $T/img.1 >$T/info &&
	grep -q 'TASK .*comm=cr_counter' $T/info &&
	grep -q 'FILE .*path=$T/count' $T/info &&
	grep -q 'MM .*exe=/usr/lib/cr/bin/cr_counter' $T/info &&
	grep -q 'VMA .*type=vdso' $T/info &&
	grep -q 'REGS .*restart=' $T/info &&
	crinfo --json $T/img.1 | grep -q '\"valid\": true'"

# A character device takes an image too (/dev/null has both ->write and ->write_iter, which
# kernel_write() refuses).
tap_check "ckpt -o /dev/null --log /dev/null succeeds" ckpt $PID -o /dev/null --log /dev/null

# Straight from ckpt into restart, through a pipe. restart waits for the pid to be freed.
kill -9 $PID
wait
pipe_restart() {
	ckpt run -- cr_counter $T/count2 10 >/dev/null 2>&1 &
	PID=$!
	wait_for test -s $T/count2 || return 1
	ckpt $PID -o - --kill | restart -i - --detach >$T/detached
	wait $PID 2>/dev/null
	[ "$(cat $T/detached)" = "$PID" ]
}
tap_check "ckpt -o - | restart -i - --detach restarts the counter" pipe_restart
last=$(tail -n 1 $T/count2)
tap_check "the piped counter goes on counting" wait_for sh -c "[ \$(tail -n 1 $T/count2) -gt $((last + 3)) ]"

# Through a UNIX stream socket.
socket_restart() {
	cr_via_socket $T/img.sock ckpt $PID -o - --kill || return 1
	wait_for pid_gone $PID || return 1
	restart -i $T/img.sock --detach >$T/detached && [ "$(cat $T/detached)" = "$PID" ]
}
tap_check "ckpt writing to a socket, then restart, restarts the counter" socket_restart
last=$(tail -n 1 $T/count2)
tap_check "the counter goes on after the socket round trip" wait_for sh -c "[ \$(tail -n 1 $T/count2) -gt $((last + 3)) ]"
kill -9 $PID
cr_cleanup
tap_finish
