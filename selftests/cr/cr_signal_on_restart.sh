#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A signal sent to a restarted process while it is still being restored is delivered once the
# process runs: not lost with what the restore itself sends, and not fatal through the
# restarter's dispositions. The target answers each SIGUSR1 with a round (cr_target memory).
# Six cycles: in odd ones the signal goes the moment the pid exists (still named "restart",
# before its task joins the restart in the kernel), in even ones the moment it shows the
# checkpointed name (inside the restore).
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

CYCLES=6
tap_plan $((1 + 2 * CYCLES))

cr_start cr_target memory $T 16
tap_check "the target is ready" cr_ready
# cycle N COMM: checkpoint and kill, then restart with a SIGUSR1 sent as soon as the pid shows
# the name COMM.
cycle() {
	ckpt $PID -o $T/img --kill --log $T/ckpt.log || { cat $T/ckpt.log; return 1; }
	if [ -n "$RESTARTER" ]; then wait $RESTARTER 2>/dev/null; else wait $PID 2>/dev/null; fi
	wait_for pid_gone $PID || return 1
	restart -i $T/img --log $T/restart.log.$1 </dev/null >/dev/null &
	RESTARTER=$!
	cr_signal_on_comm $PID $2 10 || { echo "the name $2 never showed"; return 1; }
}
# delivered N: the target answered round N.
delivered() {
	wait_for test -e $T/result.$1 && [ "$(cat $T/result.$1)" = ok ]
}
for n in $(seq $CYCLES); do
	if [ $((n % 2)) = 1 ]; then comm=restart; else comm=cr_target; fi
	tap_check "cycle $n: restarted, and signalled as soon as it was named $comm" cycle $n $comm
	tap_check "cycle $n: the signal was delivered, once the process ran" delivered $n
done
cr_cleanup
tap_finish
