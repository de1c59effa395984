#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Event files: eventfds, timerfds, signalfds and epolls, each in a state a restart could get wrong (a
# semaphore's count behind two descriptors, a counter eventfd2() cannot be given, a counter
# shared with a child, a periodic timer's unread expirations, a relative and a wall-clock
# timer, a fired one-shot timer, a disarmed timer's interval, a signalfd with its signal
# pending, an epoll with level- and edge-triggered, fired one-shot and nested watches and one
# under a descriptor closed since), checkpointed, killed and restarted twice; then the program checks each one itself
# (selftests/helpers/cr_events.c). An eventfd also held by a task outside the tree fails the
# checkpoint; corrupted EVENT records are refused at their offset, leaving no task.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

CHECKS="eventfd-semaphore-reads-one eventfd-semaphore-three eventfd-semaphore-then-empty
	eventfd-nonblock eventfd-64-bit-counter eventfd-cloexec eventfd-shared-with-child
	eventfd-child-wrote timerfd-periodic-unread-ticks timerfd-periodic-goes-on
	timerfd-periodic-interval timerfd-relative-time-left timerfd-cloexec
	timerfd-absolute-wall-clock timerfd-fired-unread timerfd-fired-once
	timerfd-disarmed-keeps-interval timerfd-disarmed-stays signalfd-reads-pending
	signalfd-mask-kept signalfd-then-empty epoll-reports-what-waited epoll-edge-reported-once
	epoll-watch-under-closed-descriptor epoll-closed-descriptor-stays-closed
	epoll-one-shot-rearms epoll-nested epoll-new-edge-reported epoll-cloexec"
tap_plan $((15 + $(echo $CHECKS | wc -w)))

cr_start cr_events $T/ev
tap_check "the program set up its event files" wait_for test -e $T/ev.ready
tap_check "cycle 1: checkpoint, kill and restart" cr_cycle 1

# event FIELD...: an EVENT record of image 1 shows every FIELD.
event() {
	grep ' EVENT ' $T/info >$T/events
	for f in "$@"; do
		grep -- "$f" $T/events >$T/events.next || return 1
		mv $T/events.next $T/events
	done
}
crinfo $T/img.1 >$T/info
tap_check "crinfo shows the 64-bit eventfd counter" event kind=eventfd counter=1099511627781
tap_check "crinfo shows the semaphore" event kind=eventfd semaphore=true counter=3
tap_check "crinfo shows the wall-clock timer" \
	event kind=timerfd clock=realtime absolute=true cancel_on_set=true
tap_check "crinfo shows the signalfd's signals" event kind=signalfd signals=10,12
tap_check "crinfo shows the event files' descriptors" grep -q ' FILE .*type=event' $T/info
tap_check "crinfo shows the epolls' interest lists" \
	sh -c "grep -q ' EPOLL .*watches=6' $T/info && grep -q ' EPOLL .*watches=1' $T/info"

# The semaphore eventfd is the program's first descriptor after 0-2.
cr_events grab $PID 3 &
GRAB=$!
wait_for test -e /proc/$GRAB/fd/3
ckpt $PID -o $T/img.leak --log $T/leak.log 2>/dev/null
tap_ok $(($? == 0)) "an eventfd also held outside the tree fails the checkpoint"
tap_check "... saying it is held outside" grep -q "held by a task outside the checkpoint" \
	$T/leak.log
kill $GRAB
wait $GRAB 2>/dev/null

tap_check "cycle 2: checkpoint and kill" ckpt $PID -o $T/img.2 --kill --log $T/ckpt.log.2
wait $RESTARTER 2>/dev/null
RESTARTER=
wait_for pid_gone $PID

cr_corrupt $T/img.2 'EVENT.*kind=signalfd' 4 '\011\0\0\0'
tap_check "an EVENT of an unknown kind: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"
# SIGKILL (bit 8) in a signalfd's mask, which signalfd4() never keeps.
cr_corrupt $T/img.2 'EVENT.*kind=signalfd' 24 '\0\1'
tap_check "a signalfd mask with SIGKILL: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"

tap_check "cycle 2: restart" cr_restart $T/img.2 $T/restart.log.2 cr_events
touch $T/ev.go
cr_results $T/ev.result "the program checks its event files" "$CHECKS"
cr_cleanup
tap_finish
