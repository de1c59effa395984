#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Pipes of every shape beyond the plain one: grown and shrunk with F_SETPIPE_SZ, in packet mode
# (pipe2 O_DIRECT) with packets of one byte to a page, plain bytes with a packet among them, and
# a grown FIFO whose writer is in packet mode, checkpointed, killed and restarted twice; then
# the program checks each one itself: capacities, bytes, where each read ends, and packet mode
# (selftests/helpers/cr_pipe_shapes.c). A packet right after the short end of plain data (which
# a refill would merge) fails the checkpoint with a reason, and the program runs on; corrupted
# PIPE records are refused at their offset, leaving no task.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

CHECKS="big-capacity big-bytes small-capacity small-bytes small-holds-one-page packets-mode-kept
	packets-one-per-read packets-new-writes-are-packets mixed-packet-ends-the-read
	mixed-writer-plain fifo-capacity fifo-writer-packet-mode fifo-bytes-and-packets"
tap_plan $((18 + $(echo $CHECKS | wc -w)))

cr_start cr_pipe_shapes $T/p
tap_check "the program set up its pipes" wait_for test -e $T/p.ready
tap_check "cycle 1: checkpoint, kill and restart" cr_cycle 1

crinfo $T/img.1 >$T/info
# pipe FIELD...: a PIPE record of image 1 shows every FIELD.
pipe() {
	grep ' PIPE ' $T/info >$T/pipes
	for f in "$@"; do
		grep -- "$f" $T/pipes >$T/pipes.next || return 1
		mv $T/pipes.next $T/pipes
	done
}
tap_check "crinfo shows the grown pipe" pipe capacity=1048576 buffered=300000
tap_check "crinfo shows the shrunk pipe" pipe capacity=4096 buffered=1000
tap_check "crinfo shows the packets" pipe capacity=65536 buffered=7199 packets=5
tap_check "crinfo shows one packet among plain bytes" pipe buffered=4250 packets=1
tap_check "crinfo shows the FIFO's capacity and packets" pipe capacity=131072 packets=2
# packet_mode TYPE: a FILE of TYPE in image 1 has O_DIRECT (octal 040000) in its flags.
packet_mode() {
	grep " FILE .*type=$1" $T/info | sed -n 's/.*flags=0o\([0-7]*\).*/\1/p' >$T/flags
	while read -r f; do
		[ $((0$f & 040000)) -ne 0 ] && return 0
	done <$T/flags
	return 1
}
tap_check "crinfo shows a pipe writer's packet mode in its flags" packet_mode pipe
tap_check "crinfo shows the FIFO writer's packet mode in its flags" packet_mode fifo

# The shape cr refuses, in a program of its own.
ckpt run -- cr_pipe_shapes merge $T/m >/dev/null 2>&1 3<&- &
MERGE=$!
wait_for test -e $T/m.ready
ckpt $MERGE -o $T/img.m --log $T/m.log 2>/dev/null
tap_ok $(($? == 0)) "a packet a refill would merge into plain data fails the checkpoint"
tap_check "... saying so" grep -q "restart would merge them" $T/m.log
thawed() {
	cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$MERGE/cgroup)
	kill -0 $MERGE && grep -qx "frozen 0" $cg/cgroup.events
}
tap_check "... and leaves the program running, thawed" thawed
tap_check "... with no image a restart could mistake for good" \
	sh -c "[ ! -s $T/img.m ] || ! crinfo $T/img.m >/dev/null 2>&1"
kill -9 $MERGE
wait $MERGE 2>/dev/null

tap_check "cycle 2: checkpoint and kill" ckpt $PID -o $T/img.2 --kill --log $T/ckpt.log.2
wait $RESTARTER 2>/dev/null
RESTARTER=
wait_for pid_gone $PID

# The first buffer's length (1 byte) said to be 2: the lengths no longer add up.
cr_corrupt $T/img.2 'PIPE.*packets=5' $((16 + 7199)) '\002'
tap_check "a PIPE whose buffers do not add up: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"
# Three pages: a capacity F_SETPIPE_SZ never gives.
cr_corrupt $T/img.2 'PIPE.*packets=5' 4 '\0\060\0\0'
tap_check "a PIPE of three pages' capacity: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"

tap_check "cycle 2: restart" cr_restart $T/img.2 $T/restart.log.2 cr_pipe_shapes
touch $T/p.go
cr_results $T/p.result "the program checks its pipes" "$CHECKS"
cr_cleanup
tap_finish
