#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Thawed checkpoints of trees that change under the rounds. A shell forks, execs and reaps a
# child in a tight loop, so that its tree gains and loses address spaces between (and during)
# the rounds: the image must restore all the same, and the shell must go on counting, after a
# checkpoint that leaves it running and after one that kills and restarts it. A writer killed in
# the middle of the rounds makes ckpt fail cleanly (a reason, exit 1, nothing left frozen).
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 8

# count: what the shell counted so far.
count() {
	cat $T/count 2>/dev/null || echo 0
}

# counts_on: the count grows.
counts_on() {
	before=$(count)
	wait_for sh -c "[ \$(cat $T/count) -gt $before ]"
}

cr_start sh -c "i=0; while :; do cr_target no-such-mode $T 2>/dev/null; i=\$((i + 1)); echo \$i >$T/count; done"
tap_check "a shell runs a child program in a loop" counts_on

# Rounds until they stop shrinking, or eight: the children come and go meanwhile.
churn() {
	ckpt $PID -o $T/churn.img --thawed --max-downtime 0 --stats --log $T/churn.log \
		2>$T/churn.err || { cat $T/churn.log $T/churn.err; return 1; }
	sed 's/^/# /' $T/churn.log $T/churn.err
	cr_dry_run $T/churn.img
}
tap_check "ckpt --thawed while its children fork, exec and exit" churn
tap_check "the shell runs on" counts_on

CR_CKPT_FLAGS="--thawed --max-downtime 0"
tap_check "ckpt --thawed --kill and restart, children churning" cr_cycle 1
tap_check "the restarted shell goes on counting" counts_on
CR_CKPT_FLAGS=
kill -9 $PID 2>/dev/null
wait $RESTARTER 2>/dev/null
RESTARTER=

# A writer killed in the middle of the rounds. The image goes to a pipe that the test reads:
# once its first bytes came, the rounds have begun, and they cannot end before the test reads the
# rest of the writer's memory, which is more than the pipe holds. No timing is involved.
MIB=$(scale 64 16)
mkdir -p $T/w
cr_start cr_writer $T/w $MIB 16 1
tap_check "a writer of $MIB MiB starts" wait_for test -e $T/w/ready
cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)
dies_midway() {
	mkfifo $T/stream
	ckpt $PID -o - --thawed --max-downtime 0 --rounds 64 >$T/stream 2>$T/dies.err &
	ckpter=$!
	exec 3<$T/stream
	dd bs=4096 count=1 <&3 >/dev/null 2>&1
	kill -9 $PID
	cat <&3 >/dev/null
	exec 3<&-
	wait $ckpter
	st=$?
	sed 's/^/# /' $T/dies.err
	[ $st -eq 1 ] && grep -q 'no such process\|failed' $T/dies.err
}
tap_check "the writer killed during the rounds: ckpt fails with a reason" dies_midway
not_frozen() {
	! grep -q '^frozen 1' $cg/cgroup.events 2>/dev/null
}
tap_check "nothing is left frozen" not_frozen

cr_cleanup
tap_finish
