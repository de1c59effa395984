#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Live migration over TCP, within one guest (127.0.0.1; the two-guest run is `make
# demo-migrate`): ckpt --migrate sends the writer to restart --listen --pidns, and kills it only
# once the destination says it runs there, where its memory checks out. Every failure before
# that leaves the writer running here, thawed, its memory intact, and ckpt exiting 1 with the
# reason: a destination that resets the connection in the middle of the rounds, one that reads
# the whole image and hangs up without an answer, one whose restart fails (the pids are taken),
# and no destination at all.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 18

MIB=$(scale 64 8)
cr_start cr_writer $T $MIB 16 1
tap_check "the writer rewrites $MIB MiB" cr_ready
tap_check "its memory checks out before any migration" cr_round 1
SOURCE=$PID
cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)

not_frozen() {
	! grep -q '^frozen 1' $cg/cgroup.events
}

# refused NAME WHAT DESTINATION...: starts DESTINATION (which creates $T/NAME.ready once it
# listens on port 7100), migrates the writer to it, and checks the source's side of the failure:
# ckpt exits 1 with a reason matching WHAT, the writer still runs here and is not frozen.
round=1
refused() {
	name=$1 what=$2
	shift 2
	rm -f $T/$name.ready
	"$@" >$T/$name.dest 2>&1 &
	dest=$!
	wait_for test -e $T/$name.ready || return 1
	ckpt $PID --migrate 127.0.0.1:7100 --log $T/$name.log 2>$T/$name.err
	st=$?
	wait $dest
	sed 's/^/# /' $T/$name.err $T/$name.dest
	[ $st -eq 1 ] && grep -q "$what" $T/$name.err && kill -0 $PID && not_frozen
}

# back: the writer's memory still checks out.
back() {
	round=$((round + 1))
	cr_round $round
}

tap_check "a destination reset mid-stream: ckpt fails, the writer runs on" \
	refused reset "failed" cr_sink 7100 $T/reset.ready 1048576
sed "s/^/# reset: /" $T/reset.err
tap_check "... its memory intact" back
tap_check "a destination that reads it all and hangs up: ckpt fails, the writer runs on" \
	refused silent "without answering" cr_sink 7100 $T/silent.ready
sed "s/^/# silent: /" $T/silent.err
tap_check "... its memory intact" back

# A restart --listen without a new pid namespace, whose ready file is made once it listens.
busy_pids() {
	sh -c "until grep -q listening $T/busy.dest 2>/dev/null; do sleep 0.05; done; touch $T/busy.ready" &
	restart --listen 127.0.0.1:7100 --no-pidns --log $T/busy.rlog
}
tap_check "a destination whose pids are taken: ckpt fails with its reason, the writer runs on" \
	refused busy "the destination failed: pid $PID is in use" busy_pids
sed "s/^/# busy: /" $T/busy.err
tap_check "... its memory intact" back

no_destination() {
	ckpt $PID --migrate 127.0.0.1:7100 2>$T/none.err
	st=$?
	sed 's/^/# /' $T/none.err
	[ $st -eq 1 ] && grep -q "cannot reach the destination" $T/none.err && kill -0 $PID && not_frozen
}
tap_check "no destination: ckpt fails at once, the writer runs on" no_destination
tap_check "... its memory intact" back

# The migration itself: the destination restores into a new pid namespace (the source's pids
# are its own until it hears back), and says so; only then is the source killed.
restart --listen 127.0.0.1:7100 --pidns --detach --log $T/dest.log >$T/dest.out 2>$T/dest.err &
dest=$!
tap_check "restart --listen says where it listens" wait_for grep -q "listening on 127.0.0.1:7100" $T/dest.err
migrate() {
	ckpt $PID --migrate 127.0.0.1:7100 --stats --log $T/src.log 2>$T/src.err ||
		{ sed 's/^/# /' $T/src.log $T/src.err; return 1; }
	sed 's/^/# /' $T/src.err
}
tap_check "ckpt --migrate 127.0.0.1:7100 exits 0" migrate
sed 's/^/# /' $T/src.err
wait $dest
tap_check "restart --listen --detach exits 0 once the tree runs" test $? -eq 0
tap_check "the source's writer is gone" wait_for pid_gone $SOURCE
tap_check "the source's cgroup is empty" sh -c "[ -z \"\$(cat $cg/cgroup.procs)\" ]"
# The writer restored, by its pid outside the new namespace.
restored() {
	for p in $(cat /sys/fs/cgroup/cr-restart-$SOURCE/cgroup.procs 2>/dev/null); do
		comm_is $p cr_writer && echo $p && return 0
	done
	return 1
}
tap_check "the writer runs at the destination" wait_for restored
PID=$(restored)
echo "# the writer: pid $SOURCE here, pid ${PID:-none} outside the destination's namespace"
tap_check "its memory is the memory at the freeze" back
tap_check "it goes on writing, and checks out again" back

[ -n "$PID" ] && echo 1 >/sys/fs/cgroup/cr-restart-$SOURCE/cgroup.kill
cr_cleanup
tap_finish
